"""The Dockerfile, checked offline (no registry for its base images is reachable here):
hadolint, the structure the image promises, and that the build context holds every file
the release build reads."""

import fnmatch
import re
import shutil
import subprocess

import dockerfile

from support import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions():
    return dockerfile.parse_file(str(DOCKERFILE))


def stages():
    """The instructions of each stage, in order."""
    result = []
    for instruction in instructions():
        if instruction.cmd == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is not installed: run the tests through tests/chart/run"
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_is_minimal_non_root_and_runs_portcullis():
    build, runtime = stages()
    assert re.fullmatch(r"gcr\.io/distroless/cc-debian\d+:nonroot|docker\.io/library/debian:\w+-slim", runtime[0].value[0])
    (user,) = [i.value[0] for i in runtime if i.cmd == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit(), "USER must be numeric and not root, for runAsNonRoot"
    assert [i.value for i in runtime if i.cmd == "ENTRYPOINT"] == [("portcullis",)]
    copies = [i for i in runtime if i.cmd == "COPY"]
    assert [c.flags for c in copies] == [("--from=build",)], "the runtime image holds only the binary"


def test_dependencies_are_built_in_their_own_layer_with_locked_versions():
    build, _ = stages()
    commands = [i for i in build if i.cmd in ("COPY", "RUN")]
    assert commands[0].cmd == "COPY" and set(commands[0].value[:-1]) == {"Cargo.toml", "Cargo.lock"}
    assert commands[1].cmd == "RUN" and "cargo build" in commands[1].value[0], "dependencies before the sources"
    builds = [i.value[0] for i in build if i.cmd == "RUN" and "cargo build" in i.value[0]]
    assert len(builds) == 2 and all("--locked" in b and "--release" in b for b in builds)


def allowed_by_dockerignore(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    included = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            included = negated
    return included


def test_build_context_holds_every_file_the_release_build_reads():
    build, _ = stages()
    copied = [source for i in build if i.cmd == "COPY" and not i.flags for source in i.value[:-1]]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert allowed_by_dockerignore(source), f".dockerignore leaves out {source}"
    assert not allowed_by_dockerignore("target/debug/portcullis") and not allowed_by_dockerignore(".git/config")
    # Files compiled into the binary: askama's templates/ and every include_str!/include_bytes!
    # outside test modules (which, by house style, close each file after #[cfg(test)]).
    needed = {"templates"}
    for source in (ROOT / "src").rglob("*.rs"):
        text = source.read_text()
        end = text.find("#[cfg(test)]")
        for match in re.finditer(r'include_(?:str|bytes)!\("([^"]+)"\)', text):
            if end == -1 or match.start() < end:
                needed.add(str((source.parent / match.group(1)).resolve().relative_to(ROOT)))
    for path in needed:
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), f"{path} is not copied into the build"
