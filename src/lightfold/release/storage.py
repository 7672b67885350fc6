"""What `destroy` must ask about: the persistent storage on a target's server (lightfold.toml
`storage`, `/srv/<app>/storage/`), which a deploy, rollback or cleanup never deletes but
deleting the server does.

    storage_fact()            every app's storage dir on the server: bytes and files (one exec)
    read_storage(name)        that fact from the target's server, or the reason it could not be read
    destroy_question(...)     the confirmation question, truthful per provider (pure): local and
                              cloud servers are deleted with their disk, byos servers are only
                              forgotten (nothing on them changes)
    may_hold_storage(...)     whether to look at all (no SSH for a server nothing was configured on)
    refusal(...)              why `--yes` alone is not enough (storage holds files, or could not
                              be read), or None
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lightfold.agent.layout import Layout
from lightfold.errors import LightfoldError
from lightfold.release.facts import Fact


@dataclass
class StorageOnServer:
    dirs: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (bytes, files)
    error: str | None = None  # why it could not be read

    @property
    def total_bytes(self) -> int:
        return sum(b for b, _ in self.dirs.values())

    @property
    def files(self) -> int:
        return sum(f for _, f in self.dirs.values())

    def to_dict(self) -> dict:
        return {"bytes": self.total_bytes, "files": self.files, "error": self.error,
                "dirs": {p: {"bytes": b, "files": f} for p, (b, f) in sorted(self.dirs.items())}}


def storage_fact() -> Fact:
    pattern = Layout("*").storage_dir  # /srv/*/storage: a glob, its characters are all safe
    command = (f'for d in {pattern}; do [ -d "$d" ] || continue; printf \'%s\\t%s\\t%s\\n\' "$d" '
               '"$(du -sb "$d" | cut -f1)" "$(find "$d" -mindepth 1 ! -type d | wc -l)"; done; true')
    return Fact("storage", command, parse_storage, display="the apps' storage")


def parse_storage(out: str, _rc: int = 0) -> dict[str, tuple[int, int]]:
    dirs = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].strip().isdigit() and parts[2].strip().isdigit():
            dirs[parts[0]] = (int(parts[1]), int(parts[2]))
    return dirs


def may_hold_storage(name: str, provider) -> bool:
    """Whether the server can hold storage worth asking about: this machine configured an app on
    it (configure makes the storage dirs) and the server still exists. Cheap: no SSH."""
    from lightfold import state

    try:
        if not state.load(name).configured:
            return False
    except LightfoldError:
        return False
    return provider.server_state(name) != "missing"


def read_storage(name: str) -> StorageOnServer:
    from lightfold.release import facts
    from lightfold.release import target as targets

    try:
        t = targets.load(name)
        values = targets.on_server(t, lambda conn: facts.read(conn, storage_fact(), timeout=60))
    except LightfoldError as e:
        return StorageOnServer(error=e.problem)
    return StorageOnServer(values["storage"])


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _describe(storage: StorageOnServer) -> str:
    where = ", ".join(sorted(storage.dirs))
    files = f"{storage.files} file" + ("" if storage.files == 1 else "s")
    return f"{human_size(storage.total_bytes)} in {files} of persistent storage ({where})"


def destroy_question(name: str, provider: str, storage: StorageOnServer | None) -> str:
    if provider == "byos":
        return (f"Forget the server of '{name}' (byos; nothing on it is changed, its apps and their "
                "persistent storage stay there)?")
    what = "sandbox machine" if provider == "local" else f"{provider} server and its disk"
    question = f"Destroy the {what} of '{name}' and everything on it"
    if storage is None:
        return question + "?"
    if storage.error:
        return question + f", including any persistent storage (it could not be read: {storage.error})?"
    if storage.files:
        return question + f", including {_describe(storage)}? This cannot be undone"
    return question + " (no persistent storage holds files)?"


def refusal(name: str, provider: str, storage: StorageOnServer | None) -> LightfoldError | None:
    """Why `destroy --yes` without `--delete-storage` must not go ahead, or None."""
    if provider == "byos" or storage is None:
        return None
    again = f"lightfold destroy --target {name} --yes --delete-storage"
    if storage.error:
        return LightfoldError(f"could not read the persistent storage on the server of '{name}' "
                              f"({storage.error}); destroying the server would delete whatever it holds",
                              f"check the server, or destroy it anyway: {again}")
    if storage.files:
        return LightfoldError(f"the server of '{name}' holds {_describe(storage)}; destroying the server "
                              "deletes it",
                              f"copy it first (e.g. lightfold run --target {name} -- tar -czf - -C "
                              f"{Layout(name).storage_dir} . > storage.tgz), then: {again}")
    return None
