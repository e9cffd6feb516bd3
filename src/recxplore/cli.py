"""The ``recxplore`` command line. With ``--json`` every command prints exactly one JSON object
on stdout; progress bars and logs go to stderr."""

from __future__ import annotations

import argparse
import errno
import functools
import json
import logging
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

from recxplore import __version__
from recxplore import config as config_mod
from recxplore.cache import home_dir
from recxplore.errors import RecxploreError
from recxplore.world import world

CONFIG_EPILOG = """configuration: --config FILE (YAML with the sections below) and/or dotted
overrides such as model.backbone=gru4rec train.loss=bce train.seed=43.
Every key (run `recxplore config` for types, defaults and help):
"""


def _emit(args: argparse.Namespace, obj: Mapping[str, Any], human: str) -> None:
    # Under torchrun every rank returns the same result; one prints it, so --json stays one
    # object (two ranks' long lines interleave on a shared pipe).
    if not world().main:
        return
    if args.json:
        print(json.dumps(obj, default=str))
    else:
        print(human)


def _load_config(args: argparse.Namespace) -> config_mod.Config:
    return config_mod.load(args.config, args.overrides)


def _dataset_config(args: argparse.Namespace, *extra: str) -> config_mod.Config:
    """The config of a command that names its dataset as an argument (prepare, text)."""
    overrides = [f"data.name={args.dataset}", *extra, *args.overrides]
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    return config_mod.load(args.config, overrides)


def _data_dir(args: argparse.Namespace) -> Path:
    from recxplore.config import DataConfig
    from recxplore.data.prepare import raw_dir

    return raw_dir(DataConfig(data_dir=args.data_dir), home_dir())


# -- commands ----------------------------------------------------------------------------------


def cmd_datasets(args: argparse.Namespace) -> None:
    from recxplore.data.sources import listed_datasets, locate

    data_dir = _data_dir(args)
    rows = [
        {"name": name, "available": bool(locate(name, data_dir))}
        for name in listed_datasets(data_dir)
    ]
    human = "\n".join(
        f"{r['name']:<28} {'available' if r['available'] else 'not found'}" for r in rows
    )
    _emit(
        args,
        {"datasets": rows, "data_dir": str(data_dir)},
        f"{human}\n(raw files are looked for in {data_dir}; see the README for downloads)",
    )


def cmd_prepare(args: argparse.Namespace) -> None:
    from recxplore.data.prepare import prepare

    cfg = _dataset_config(args)
    ds, art = prepare(cfg.data, home_dir(cfg.paths.home), fresh=args.fresh)
    stats = ds.stats()
    human = "\n".join(f"{k:<24} {v}" for k, v in stats.items())
    _emit(args, {**stats, "path": str(art.path)}, f"{human}\ncached at {art.path}")


def cmd_config(args: argparse.Namespace) -> None:
    cfg = _load_config(args)
    _emit(
        args,
        cfg.to_dict(),
        config_mod.dump(cfg) if args.config or args.overrides else config_mod.describe(),
    )


def cmd_text(args: argparse.Namespace) -> None:
    from recxplore.data.prepare import prepare
    from recxplore.text.items import item_texts
    from recxplore.text.rewrite import final_texts

    if args.limit is not None and args.limit < 1:
        raise config_mod.ConfigError([f"--limit: must be >= 1; got {args.limit}"])
    cfg = _dataset_config(args, *([f"text.rewrite={args.rewrite}"] if args.rewrite else []))
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    last = ds.n_items if args.limit is None else min(args.limit, ds.n_items)
    shown = list(range(1, last + 1))
    flat = item_texts(ds, cfg.text)
    final = final_texts(ds, cfg, progress=not args.json, items=shown)
    items: list[dict[str, Any]] = [
        {"index": i, "id": ds.item_ids[i - 1], "text": final[i]} for i in shown
    ]
    if cfg.text.rewrite != "none":
        for item in items:
            item["original"] = flat[item["index"]]
    human = "\n\n".join(
        f"[{it['index']}] {it['id']}\n"
        + (f"original:  {it['original']}\nrewritten: " if "original" in it else "")
        + it["text"]
        for it in items
    )
    _emit(args, {"dataset": ds.name, "rewrite": cfg.text.rewrite, "items": items}, human)


def cmd_extract(args: argparse.Namespace) -> None:
    from recxplore.pipeline import features

    cfg = _load_config(args)
    summary = features(cfg, progress=not args.no_progress, fresh=args.fresh)[3].to_dict()
    human = "\n".join(f"{k:<18} {v}" for k, v in summary.items())
    _emit(args, summary, human)


def cmd_diagnose(args: argparse.Namespace) -> None:
    from recxplore.diagnose import diagnose

    out = diagnose(_load_config(args), progress=not args.no_progress)
    span = ", own tokens" if out["pool_span"] == "item" else ""
    lines = [f"store {out['store']} ({out['extractor']}, {out['pooling']} pooling{span})"]
    for part in ("stored", "adapter_input"):
        lines.append(f"{part}:")
        lines += [f"  {k:<28} {v}" for k, v in out[part].items()]
    if "distinct_code_tuples" in out:
        lines.append(f"distinct PQ code tuples       {out['distinct_code_tuples']}")
    _emit(args, out, "\n".join(lines))


def cmd_tune(args: argparse.Namespace) -> None:
    import time

    from recxplore.pipeline import tune

    cfg = _load_config(args)
    if not cfg.tune.stages:
        raise config_mod.ConfigError(
            [
                "tune.stages: empty, so there is nothing to tune; e.g. "
                "tune.stages=[cpt,sft] (the paper's best) or [scft]"
            ]
        )
    started = time.perf_counter()
    chain = tune(cfg, progress=not args.no_progress, fresh=args.fresh)
    folders, trained = chain.folders, chain.trained
    out = {
        "path": str(folders[-1]),
        "stages": cfg.tune.stages,
        "adapters": [str(f) for f in folders],
        "trained": trained,
        "seconds": round(time.perf_counter() - started, 3),
    }
    human = "\n".join(
        f"{stage:<5} {folder}"
        for stage, folder in zip(
            ([] if not cfg.tune.adapter else ["given"]) + cfg.tune.stages, folders
        )
    )
    _emit(args, out, f"{human}\n({len(trained)} stage(s) trained now, the rest from the cache)")


def cmd_train(args: argparse.Namespace) -> None:
    from recxplore.pipeline import train
    from recxplore.tables import results_table

    results = train(
        _load_config(args),
        progress=not args.no_progress,
        fresh=args.fresh,
        finish_on=args.finish_on,
    )
    _emit(args, results, f"{results_table([results])}\nrun folder: {results['run_dir']}")


def cmd_run(args: argparse.Namespace) -> None:
    from recxplore import pipeline

    cfg = pipeline.main_job_config(args.config, args.overrides)
    out = pipeline.run(cfg, progress=not args.no_progress, fresh=args.fresh)
    folders = "\n".join(f"run folder: {r['run_dir']}" for r in out["runs"])
    _emit(args, out, f"{out['table']}\n{folders}")


def cmd_sweep(args: argparse.Namespace) -> None:
    from recxplore.pipeline import train as train_one
    from recxplore.sweep import load_sweep, only_cells, run_sweep

    train = functools.partial(train_one, finish_on=args.finish_on) if args.finish_on else None
    if args.ray is not None and args.jobs > 1:
        raise config_mod.ConfigError(
            ["sweep: --jobs sets local worker processes and --ray hands runs to Ray; use one"]
        )
    sweep = load_sweep(args.file, args.overrides)
    if args.cells:
        sweep = only_cells(sweep, [c for c in args.cells.split(",") if c])
    record = run_sweep(
        sweep,
        progress=not args.no_progress,
        train=train,
        jobs=args.jobs,
        ray=args.ray,
    )
    failed = [r for r in record["runs"] if r["status"] != "ok"]
    human = (
        f"{len(record['runs']) - len(failed)} run(s) finished, {len(failed)} failed; "
        f"details in {record['path']}/sweep.json\n"
        f"report: recxplore report {record['path']}"
    )
    _emit(args, record, human)


def cmd_report(args: argparse.Namespace) -> None:
    from recxplore.report import write_report

    out = Path(args.out) if args.out else Path(args.paths[0]) / "report"
    words = ["recxplore", "report", *args.paths]
    for flag, value in (
        ("--out", args.out),
        ("--baseline", args.baseline),
        ("--title", args.title),
    ):
        if value:
            words += [flag, value]
    command = shlex.join(words)
    summary = write_report(
        [Path(p) for p in args.paths],
        out,
        baseline=args.baseline,
        title=args.title,
        command=command,
    )
    _emit(args, summary, "\n".join(summary["files"]))


def cmd_export(args: argparse.Namespace) -> None:
    from recxplore.serve.bundle import export_bundle

    summary = export_bundle(Path(args.run_dir), Path(args.out))
    _emit(
        args,
        summary,
        f"{summary['bundle']}: {summary['items']} items, {summary['backbone']} / "
        f"{summary['fusion']}; new items: {summary['new_items']}",
    )


def cmd_recommend(args: argparse.Namespace) -> None:
    from recxplore.serve.bundle import load_bundle
    from recxplore.serve.recommend import recommend

    bundle = load_bundle(Path(args.bundle), args.approximate, args.ef_search)
    history = [i.strip() for i in args.history.split(",") if i.strip()]
    result = recommend(
        bundle,
        [history],
        k=args.k,
        exclude_history=not args.include_history,
        skip_unknown=args.skip_unknown,
    )[0]
    lines = [
        f"{n:>3}. {r['id']}\t{r['title']}\t{r['score']:.4f}"
        for n, r in enumerate(result["items"], 1)
    ]
    if result["skipped"]:
        lines.append(f"skipped unknown ids: {', '.join(result['skipped'])}")
    _emit(args, result, "\n".join(lines))


def cmd_serve(args: argparse.Namespace) -> None:
    from recxplore.serve.app import serve
    from recxplore.serve.bundle import load_bundle
    from recxplore.serve.recommend import Limits

    bundle = load_bundle(Path(args.bundle), args.approximate, args.ef_search)
    limits = Limits(max_history=args.max_history, max_k=args.max_k, max_batch=args.max_batch)
    print(f"serving {args.bundle} on http://{args.host}:{args.port} (docs: /docs)", file=sys.stderr)
    serve(bundle, args.host, args.port, limits, threads=args.threads)


def _add_approximate(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--approximate",
        action="store_true",
        help="top-K from a faiss HNSW graph built at load, not from every item's score (for "
        "large catalogues; see docs/serving.md)",
    )
    p.add_argument(
        "--ef-search", type=int, default=256, help="--approximate: candidates searched (256)"
    )


def cmd_add_items(args: argparse.Namespace) -> None:
    from recxplore.serve.new_items import add_items

    summary = add_items(Path(args.bundle), Path(args.items))
    _emit(
        args,
        summary,
        f"{summary['bundle']}: added {summary['added']} items ({summary['items']} in all) in "
        f"{summary['seconds']:.1f}s",
    )


# -- parser ------------------------------------------------------------------------------------


def _sweep_doc() -> str:
    from recxplore import sweep

    return sweep.__doc__ or ""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings on stderr")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config file (default: built-in defaults)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="section.key=value",
        help="dotted overrides, e.g. model.backbone=gru4rec train.seed=43",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="ignore a cached result and recompute (a finished run folder is replaced)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recxplore",
        description="LLM item features for sequential recommenders "
        "(RecXplore, arXiv 2509.14979). Caches and runs live under $RECXPLORE_HOME "
        "(default ~/.cache/recxplore).",
    )
    parser.add_argument("--version", action="version", version=f"recxplore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    epilog = CONFIG_EPILOG + config_mod.describe()
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("datasets", help="list datasets and whether each is available offline")
    p.add_argument("--data-dir", help="folder with raw files (default: $RECXPLORE_HOME/raw)")
    _add_common(p)
    p.set_defaults(func=cmd_datasets)

    # Commands that name their dataset as an argument.
    for name, func, text in (
        ("prepare", cmd_prepare, "read, filter and split a dataset; print its statistics"),
        ("text", cmd_text, "item texts as the extractor sees them"),
    ):
        p = sub.add_parser(name, help=text, epilog=epilog, formatter_class=fmt)
        p.add_argument("dataset", help="e.g. ml-100k, ml-1m, amazon2014:Beauty, steam, atomic:NAME")
        p.add_argument("--data-dir", help="folder with raw files (default: $RECXPLORE_HOME/raw)")
        _add_common(p)
        _add_config(p)
        p.set_defaults(func=func)
    text_parser = sub.choices["text"]
    text_parser.add_argument("--limit", type=int, metavar="N", help="only the first N items")
    text_parser.add_argument(
        "--rewrite",
        metavar="MODE",
        help="show LLM rewrites (text.rewrite: keywords, summary, expansion) "
        "beside the original texts; generate.* picks the generator",
    )

    # Commands configured entirely by --config and overrides.
    for name, func, text in (
        ("tune", cmd_tune, "LoRA-tune the extractor (tune.stages: cpt, sft, scft)"),
        ("extract", cmd_extract, "embed every item's text into an embedding store"),
        ("diagnose", cmd_diagnose, "how well the extracted features tell items apart"),
        ("train", cmd_train, "train and evaluate one configuration"),
        (
            "run",
            cmd_run,
            "the whole chain beside the ID-only baseline; no --config = the "
            "paper's best pipeline (overrides go on top)",
        ),
    ):
        p = sub.add_parser(name, help=text, epilog=epilog, formatter_class=fmt)
        _add_common(p)
        _add_config(p)
        p.set_defaults(func=func)

    p = sub.add_parser(
        "sweep",
        help="runs over cells and seeds from a sweep file (resumable)",
        description=_sweep_doc(),
        formatter_class=fmt,
    )
    p.add_argument("file", help="sweep YAML, e.g. configs/paper/adapter.yaml")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="section.key=value",
        help="overrides for every cell, e.g. train.device=cuda",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="runs trained at once, each in its own process (default 1)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run each (cell, seed) as a Ray task: on the cluster at ADDRESS (e.g. auto, or "
        "ray://head:10001), or on a local Ray instance without one; paths.home must be shared",
    )
    p.add_argument(
        "--cells",
        metavar="A,B",
        help="run only these cells of the file (the same runs as in the whole sweep)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_common(p)
    p.set_defaults(func=cmd_sweep)

    for name in ("train", "sweep"):
        sub.choices[name].add_argument(
            "--finish-on",
            metavar="DEVICE",
            help="finish unfinished runs from their checkpoints "
            "on DEVICE (e.g. cpu, for runs started on a GPU machine) instead of train.device; they keep "
            "their keys and results.json lists each epoch's device; a run without a checkpoint "
            "fails rather than starting there",
        )

    p = sub.add_parser("report", help="tables (Markdown, CSV) and a figure from runs or sweeps")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_DIR",
        help="run folders and/or sweep folders (<home>/sweeps/NAME)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: FIRST/report)")
    p.add_argument(
        "--baseline", metavar="CELL", help="cell to compare against (default: the sweep's baseline)"
    )
    p.add_argument("--title", help="report title")
    _add_common(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="a trained run as a self-contained serving bundle")
    p.add_argument("run_dir", help="a finished run folder (<home>/runs/...)")
    p.add_argument("out", help="the bundle folder to create")
    _add_common(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("recommend", help="top-K items for one history, from a bundle")
    p.add_argument("bundle", help="a folder made by recxplore export")
    p.add_argument(
        "--history", required=True, metavar="ID,ID,...", help="raw item ids, oldest first"
    )
    p.add_argument("--k", type=int, default=10, help="items to recommend (default 10)")
    p.add_argument("--include-history", action="store_true", help="allow the history's own items")
    p.add_argument(
        "--skip-unknown", action="store_true", help="leave unknown ids out instead of failing"
    )
    _add_approximate(p)
    _add_common(p)
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser(
        "serve",
        help="serve a bundle over HTTP (POST /recommend, GET /items/ID, GET /health, /docs)",
        description="Bearer-token auth when $RECXPLORE_SERVE_TOKEN is set.",
    )
    p.add_argument("bundle", help="a folder made by recxplore export")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-history", type=int, default=1000, help="ids per history (1000)")
    p.add_argument("--max-k", type=int, default=1000, help="largest k (1000)")
    p.add_argument("--max-batch", type=int, default=256, help="histories per request (256)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per request (default 1: a small model gains little from more, and "
        "concurrent requests use the other cores)",
    )
    _add_approximate(p)
    _add_common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "add-items", help="embed new items from their attributes into a bundle, no retraining"
    )
    p.add_argument("bundle", help="a folder made by recxplore export")
    p.add_argument("items", help='JSONL, one object a line: {"id": ..., "title": ..., ...}')
    _add_common(p)
    p.set_defaults(func=cmd_add_items)

    p = sub.add_parser(
        "config",
        help="show every config key, or the resolved config",
        epilog=epilog,
        formatter_class=fmt,
    )
    _add_common(p)
    p.add_argument("--config", metavar="FILE", help="YAML config file to validate and resolve")
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    p.set_defaults(func=cmd_config)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    # Overrides may come after options (`prepare X --data-dir D data.filter=none`), which
    # argparse's positional handling cannot interleave; collect them here.
    args, extra = parser.parse_known_args(argv)
    stray = [e for e in extra if e.startswith("-") or "=" not in e]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    level = logging.WARNING if args.quiet else logging.INFO
    # the level sits on the handler too: a run lowers the recxplore logger to INFO for its
    # log.txt, and those records must not reach stderr under -q
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(level)
    logging.basicConfig(
        level=level, handlers=[stderr], format="%(levelname)s %(name)s: %(message)s"
    )
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except RecxploreError as err:
        return _fail(args, str(err), type(err).__name__, 2)
    except OSError as err:  # a read-only or full disk, a file where a folder should be
        return _fail(args, os_error_message(err), type(err).__name__, 2)
    except KeyboardInterrupt:
        return _fail(
            args, "interrupted; rerun the same command to resume", "KeyboardInterrupt", 130
        )
    return 0


def _fail(args: argparse.Namespace, message: str, kind: str, code: int) -> int:
    """Print the error for a person on stderr and, with ``--json``, as the one JSON object."""
    print(f"error: {message}" if code != 130 else message, file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"error": message, "kind": kind}))
    return code


def os_error_message(err: OSError) -> str:
    """What went wrong with which path, and what to do about it."""
    where = err.filename or "writing under the recxplore home"
    if isinstance(err, PermissionError):
        return (
            f"{where}: permission denied; recxplore writes caches and runs under its home "
            f"(paths.home or $RECXPLORE_HOME): make it writable or point it elsewhere"
        )
    if isinstance(err, NotADirectoryError):
        return (
            f"{where}: a file stands where a folder is needed; move it away or set paths.home "
            f"(or $RECXPLORE_HOME) to a folder"
        )
    if err.errno == errno.ENOSPC:
        return (
            f"{where}: no space left on the device; free some space (or set paths.home to "
            f"another disk) and rerun the same command: finished work is kept"
        )
    return f"{where}: {err.strerror or err}; check the path and rerun"
