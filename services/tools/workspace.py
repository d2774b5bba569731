"""A workspace folder that tool calls cannot leave.

Confinement does not rest on checking a path string and then opening it (a link swapped
between the check and the use would win). Every path is walked one component at a time
from a file descriptor of the workspace root, each step opened with ``O_NOFOLLOW`` relative
to the previous directory's descriptor: a symbolic link anywhere on the way is refused, and
what was checked is what is used. Before any of that, a path is refused outright when it
holds a NUL byte, a backslash, a ``..`` component, starts with ``~``, or is absolute (an
absolute path is accepted only when it names something under the workspace root, lexically).

Symbolic links are never followed, even ones that point inside the workspace.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ToolFailure(Exception):
    """A tool call that cannot be done, with an HTTP-like status and a stable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PathRefused(ToolFailure):
    status, code = 400, "path_refused"


class PathNotFound(ToolFailure):
    status, code = 404, "not_found"


class PathConflict(ToolFailure):
    status, code = 409, "conflict"


class TooLarge(ToolFailure):
    status, code = 413, "too_large"


@dataclass(frozen=True)
class Located:
    """A path split into its parent directory's components and its final name."""

    parents: tuple[str, ...]
    name: str | None  # None: the workspace root itself

    @property
    def display(self) -> str:
        return "/".join((*self.parents, self.name)) if self.name else "."


class Workspace:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve(strict=True)

    # -- path checks -----------------------------------------------------------------------

    def locate(self, raw: str) -> Located:
        """Split a caller's path into safe components, or refuse it (no filesystem access)."""
        if not isinstance(raw, str):
            raise PathRefused("path must be a string")
        if "\x00" in raw:
            raise PathRefused("path contains a NUL byte")
        if len(raw.encode("utf-8", errors="surrogatepass")) > MAX_PATH_BYTES:
            raise PathRefused(f"path is longer than {MAX_PATH_BYTES} bytes")
        if "\\" in raw:
            raise PathRefused("path contains a backslash; use / between folders")
        if raw.startswith("~"):
            raise PathRefused("path starts with ~; paths are relative to the workspace")
        path = PurePosixPath(raw)
        if path.is_absolute():
            try:
                path = path.relative_to(PurePosixPath(self.root))
            except ValueError:
                raise PathRefused(f"{raw!r} is outside the workspace") from None
        parts = [p for p in path.parts if p not in ("", ".")]
        if ".." in parts:
            raise PathRefused("path contains '..'; it must stay inside the workspace")
        for p in parts:
            if len(p.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
                raise PathRefused(f"a path component is longer than {MAX_NAME_BYTES} bytes")
        if not parts:
            return Located((), None)
        return Located(tuple(parts[:-1]), parts[-1])

    # -- descriptors -----------------------------------------------------------------------

    @contextlib.contextmanager
    def directory(self, parts: tuple[str, ...], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the folder at ``parts`` under the root, walked without links."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for i, name in enumerate(parts):
                try:
                    nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise PathNotFound(
                            f"folder {'/'.join(parts[: i + 1])!r} does not exist"
                        ) from None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o755, dir_fd=fd)
                    nxt = self._open_dir_step(name, fd, parts[: i + 1])
                except OSError as exc:
                    raise self._step_error(exc, parts[: i + 1]) from None
                os.close(fd)
                fd = nxt
            yield fd
        finally:
            os.close(fd)

    def _open_dir_step(self, name: str, fd: int, shown: tuple[str, ...]) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise self._step_error(exc, shown) from None

    @staticmethod
    def _step_error(exc: OSError, shown: tuple[str, ...]) -> ToolFailure:
        where = "/".join(shown)
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            return PathRefused(f"{where!r} is a symbolic link; links are not followed")
        if exc.errno == errno.ENOTDIR:
            # O_DIRECTORY|O_NOFOLLOW on a link reports ENOTDIR on some systems
            return PathRefused(f"{where!r} is not a folder (or is a symbolic link)")
        if exc.errno == errno.ENOENT:
            return PathNotFound(f"{where!r} does not exist")
        if exc.errno == errno.EACCES:
            return PathRefused(f"{where!r}: permission denied")
        return ToolFailure(f"{where!r}: {exc.strerror}")

    def open_file(self, loc: Located, dir_fd: int, flags: int, mode: int = 0o644) -> int:
        """Open the final component inside ``dir_fd`` without following a link."""
        assert loc.name is not None
        try:
            return os.open(loc.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.EISDIR:
                raise PathConflict(f"{loc.display!r} is a folder") from None
            if exc.errno == errno.EEXIST:
                raise PathConflict(f"{loc.display!r} already exists") from None
            raise self._step_error(exc, (*loc.parents, loc.name)) from None

    def read_regular(self, loc: Located, max_bytes: int) -> tuple[bytes, int]:
        """The first ``max_bytes`` of a regular file and its full size."""
        if loc.name is None:
            raise PathConflict("the workspace root is a folder, not a file")
        with self.directory(loc.parents) as d:
            fd = self.open_file(loc, d, os.O_RDONLY | os.O_NONBLOCK)
            try:
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    raise PathConflict(f"{loc.display!r} is a folder")
                if not stat.S_ISREG(st.st_mode):
                    raise PathRefused(f"{loc.display!r} is not a regular file")
                chunks, left = [], max_bytes
                while left > 0:
                    piece = os.read(fd, min(left, 1 << 20))
                    if not piece:
                        break
                    chunks.append(piece)
                    left -= len(piece)
                return b"".join(chunks), st.st_size
            finally:
                os.close(fd)

    def write_atomic(self, loc: Located, data: bytes, *, create_dirs: bool) -> bool:
        """Write through a temporary file renamed over the target (inside the same folder
        descriptor); returns whether the file existed before."""
        if loc.name is None:
            raise PathConflict("the workspace root is a folder, not a file")
        with self.directory(loc.parents, create=create_dirs) as d:
            existed = False
            try:
                st = os.stat(loc.name, dir_fd=d, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise PathRefused(f"{loc.display!r} is a symbolic link; links are not followed")
                if not stat.S_ISREG(st.st_mode):
                    raise PathConflict(f"{loc.display!r} is not a regular file")
                existed = True
            tmp = f".{loc.name[:200]}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                dir_fd=d,
            )  # fmt: skip
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                os.unlink(tmp, dir_fd=d)
                raise
            os.close(fd)
            # rename replaces a link swapped in meanwhile rather than writing through it
            os.replace(tmp, loc.name, src_dir_fd=d, dst_dir_fd=d)
            return existed
