from recxplore.cli import main

raise SystemExit(main())
