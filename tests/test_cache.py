from recxplore.cache import Artifact, stage_key


def test_publish_is_atomic_and_fresh_rebuilds(tmp_path):
    art = Artifact(tmp_path, "stage", stage_key("stage", {"a": 1}))
    folder = art.begin()
    (folder / "data.txt").write_text("one")
    assert not art.done  # an unfinished folder never looks finished
    art.publish({"n": 1})
    assert art.done and (art.path / "data.txt").read_text() == "one"
    assert art.manifest()["n"] == 1 and not art.partial.exists()
    folder = art.begin(fresh=True)
    assert not art.done and not (folder / "data.txt").exists()
    (folder / "data.txt").write_text("two")
    art.publish({"n": 2})
    assert (art.path / "data.txt").read_text() == "two"


def test_keys_depend_on_config_and_inputs():
    assert stage_key("s", {"a": 1}) == stage_key("s", {"a": 1})
    assert stage_key("s", {"a": 1}) != stage_key("s", {"a": 2})
    assert stage_key("s", {"a": 1}, ("x",)) != stage_key("s", {"a": 1}, ("y",))


def test_lock_makes_a_second_builder_wait_then_reuse(tmp_path):
    import threading
    import time

    events = []

    def build(name, hold):
        art = Artifact(tmp_path, "stage", "k")
        with art.lock():
            if art.done:
                events.append(f"{name} reused")
                return
            events.append(f"{name} builds")
            folder = art.begin()
            time.sleep(hold)  # the other thread is blocked on the lock meanwhile
            (folder / "x").write_text(name)
            art.publish({})

    first = threading.Thread(target=build, args=("a", 0.3))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=build, args=("b", 0))
    second.start()
    first.join()
    second.join()
    assert events == ["a builds", "b reused"]
