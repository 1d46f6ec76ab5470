"""Reading an arm file: find it, read it as a regular file of bounded size, parse and check
it, and bound what it would build, before MuJoCo reads a byte of it.

An arm file may come from someone else, and MuJoCo trusts it: it reads whatever its
``file=`` attributes name (a FIFO hangs it, ``/dev/zero`` never ends) and builds whatever
it describes (six nested ``<replicate count="10">`` in 3.7 KB make a million bodies and
4 GB). So `read_spec` reads the file through `reacher.files` (regular, bounded), parses
it in one linear pass that stops at `MAX_XML_DEPTH` or `MAX_MODEL_ELEMENTS`, checks
its numbers (`reacher.sim.checks.xml_problem`), and walks it with its ``<include>`` files:
every file any element names (includes, meshes, textures, height fields, skins, models,
wherever ``<compiler>``'s meshdir, texturedir or assetdir put them) must be a regular
file of bounded size, and the model's element count once replicated, its height fields'
samples, its textures' pixels and its arena are bounded (`reacher.limits`). Only then
does MuJoCo parse it, from the bytes reacher read (`MjSpec.from_string` with the included
files and assets in memory), so a file swapped after the checks is never opened. Each
refusal is one `ArmFileError` naming the file.
"""

from __future__ import annotations

import math
import os
import struct
import xml.etree.ElementTree as ElementTree
from importlib import resources
from pathlib import Path
from xml.parsers import expat

import mujoco

from reacher.errors import ArmFileError, UnreadableFile, one_line, printable
from reacher.files import read_head, read_regular
from reacher.limits import (
    MAX_ARENA_BYTES,
    MAX_ARM_BYTES,
    MAX_ASSET_BYTES,
    MAX_ASSETS_BYTES,
    MAX_HFIELD_SAMPLES,
    MAX_INCLUDES,
    MAX_MESH_VERTICES,
    MAX_MODEL_ELEMENTS,
    MAX_RENDER_SIDE,
    MAX_TEXTURE_PIXELS,
    MAX_XML_DEPTH,
)
from reacher.sim.checks import xml_problem

BUILTIN_ARMS = ("two_link", "three_link")


def builtin_path(name: str) -> Path:
    """Path of a built-in arm file, from a checkout or from an installed wheel."""
    checkout = Path(__file__).resolve().parents[2] / "assets" / f"{name}.xml"
    if checkout.is_file():
        return checkout
    return Path(str(resources.files("reacher.assets").joinpath(f"{name}.xml")))


def resolve_arm_path(arm: str | Path) -> Path:
    """A built-in name or a file path → the MJCF file to read."""
    if isinstance(arm, str) and arm in BUILTIN_ARMS:
        return builtin_path(arm)
    path = Path(arm).expanduser()
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, which MuJoCo cannot take as a name
        raise ArmFileError(printable(path), "has a name that is not UTF-8, which MuJoCo cannot open; "
                                            "rename the file") from None
    if not path.exists():
        hint = "" if path.suffix else f" (built-in arms: {', '.join(BUILTIN_ARMS)})"
        raise ArmFileError(path, f"no such file{hint}")
    if path.is_dir():
        raise ArmFileError(path, "is a directory, not an MJCF file")
    return path


def read_spec(path: Path) -> mujoco.MjSpec:
    """The file's MjSpec, once the file and all it names have passed the checks above."""
    data, root = _read_mjcf(path, path)
    problem = xml_problem(root)
    if problem:
        raise ArmFileError(path, problem)
    walk = _Walk(path)
    walk.run(root)
    try:
        if walk.exact:
            # MuJoCo gets the very bytes checked above, never the paths: a file swapped for
            # a FIFO or /dev/zero since the check is not opened again.
            spec = mujoco.MjSpec.from_string(data.decode("utf-8"), include=walk.includes, assets=walk.assets)
            spec.modelfiledir = str(path.parent)
            return spec
        return mujoco.MjSpec.from_file(str(path))
    except ValueError as err:
        raise ArmFileError(path, f"is not valid MJCF ({one_line(err)})") from None


def compile_spec(spec: mujoco.MjSpec, path: Path) -> mujoco.MjModel:
    try:
        model = spec.compile()
    except ValueError as err:
        raise ArmFileError(path, f"does not compile ({one_line(err)})") from None
    if model.narena > MAX_ARENA_BYTES:  # MjData allocates it: refused before that
        raise ArmFileError(path, f"asks for {model.narena:,} bytes of simulation memory (<size memory>), "
                                 f"more than the {MAX_ARENA_BYTES:,} reacher allows")
    return model


def read_mjcf(file: Path, arm: Path) -> ElementTree.Element:
    """The root <mujoco> element of `file` (the arm or one it includes), refused with an
    error naming `arm` when it is not a bounded regular file of well-formed MJCF."""
    return _read_mjcf(file, arm)[1]


def _read_mjcf(file: Path, arm: Path) -> tuple[bytes, ElementTree.Element]:
    where = "" if file == arm else f"included file {file} "
    try:
        data = read_regular(file, MAX_ARM_BYTES)
    except UnreadableFile as err:
        raise ArmFileError(arm, f"{where}{err.problem}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ArmFileError(arm, f"{where}is not a text file (expected MJCF XML)") from None
    if not text.strip():
        raise ArmFileError(arm, f"{where}is empty")
    if not text.lstrip().startswith("<"):
        raise ArmFileError(arm, f"{where}is not XML (expected an MJCF <mujoco> document)")
    root = _parse(data, arm, where)
    if root.tag != "mujoco":
        raise ArmFileError(arm, f"{where}has root element <{root.tag}>, expected <mujoco>")
    return data, root


class _Refused(Exception):
    """Raised from inside expat's callbacks to stop the parse at once."""


def _parse(data: bytes, arm: Path, where: str) -> ElementTree.Element:
    """The element tree, built in one pass of expat over the whole text (linear: feeding
    it in chunks re-scans a long token, a 100 MB comment, once per chunk), stopped as soon
    as the nesting or the number of elements passes what MuJoCo can build."""
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate()
    depth = count = 0

    def start(tag, attrib):
        nonlocal depth, count
        depth += 1
        count += 1
        if depth > MAX_XML_DEPTH:
            raise _Refused(f"nests elements more than {MAX_XML_DEPTH} deep, beyond what MuJoCo reads")
        if count > MAX_MODEL_ELEMENTS:
            raise _Refused(f"has more than {MAX_MODEL_ELEMENTS:,} elements, more than reacher loads")
        builder.start(tag, attrib)

    def end(tag):
        nonlocal depth
        depth -= 1
        builder.end(tag)

    parser.StartElementHandler, parser.EndElementHandler = start, end
    try:
        parser.Parse(data, True)
    except _Refused as err:
        raise ArmFileError(arm, f"{where}{err}") from None
    except expat.ExpatError as err:
        raise ArmFileError(arm, f"{where}is malformed XML ({expat.ErrorString(err.code)}: "
                                f"line {err.lineno}, column {err.offset})") from None
    return builder.close()


# --- what the file names and builds -------------------------------------------------------------

# Cube and skybox textures have six faces; a builtin one is width x height per face.
_SIX_FACES = ("cube", "skybox")
_PNG = b"\x89PNG\r\n\x1a\n"


class _Walk:
    """One pass over the arm's elements, its included files' spliced in where they are
    included, counting elements as MuJoCo would build them and checking each named file."""

    def __init__(self, arm: Path):
        self.arm = arm
        self.base = arm.parent
        self.dirs = [self.base]
        self.elements = 0
        self.asset_bytes = 0
        self.included = 0
        self.checked: set[Path] = set()
        # The bytes read of each file named, by file name as MuJoCo's virtual file system
        # keys them (it drops the folders). `exact` stays true while they are all MuJoCo
        # needs: every name found, none twice with different contents, no <model>.
        # Otherwise MuJoCo reads the files itself (and reports what is missing, as before).
        self.includes: dict[str, bytes] = {}
        self.assets: dict[str, bytes] = {}
        self.exact = True

    def run(self, root: ElementTree.Element) -> None:
        for compiler in root.iter("compiler"):  # where MuJoCo looks for the files named
            for key in ("assetdir", "meshdir", "texturedir"):
                if compiler.get(key):
                    self.dirs.append(self.base / compiler.get(key))
        stack = [(child, 1, self.base) for child in reversed(list(root))]
        while stack:  # not recursive: nesting is bounded, includes are not
            element, copies, folder = stack.pop()
            copies *= self._count(element, "count", product=True) if element.tag in ("flexcomp", "composite") else 1
            self.elements += copies
            if self.elements > MAX_MODEL_ELEMENTS:
                raise ArmFileError(self.arm, self._too_many(element))
            self._check_files(element)
            self._check_sizes(element)
            inner = copies * (self._count(element, "count") if element.tag == "replicate" else 1)
            children = list(element)
            self.exact &= element.tag != "model"
            if element.tag in ("include", "model") and element.get("file"):
                folder, children = self._included(element.get("file"), folder)
            stack.extend((child, inner, folder) for child in reversed(children))

    def _too_many(self, element: ElementTree.Element) -> str:
        return (f"would build more than {MAX_MODEL_ELEMENTS:,} elements once <replicate>, <flexcomp> and "
                f"<composite> are expanded (reached at a <{element.tag}>), more than reacher loads")

    def _count(self, element: ElementTree.Element, attribute: str, product: bool = False) -> int:
        """A count attribute as MuJoCo reads it; one that is not a number is left for
        MuJoCo's own error."""
        try:
            values = [int(float(v)) for v in (element.get(attribute) or "1").split()]
        except (ValueError, OverflowError):
            return 1
        values = [max(v, 1) for v in (values if product else values[:1])]
        return math.prod(values) if values else 1

    def _candidates(self, name: str) -> list[Path]:
        """Where MuJoCo may look for a file named `name`: the arm's folder or one of the
        compiler's folders (each as they exist; a missing file is MuJoCo's to report)."""
        if os.path.isabs(name):
            return [Path(name)]
        return [d / name for d in self.dirs if os.path.lexists(d / name)]

    def _check_files(self, element: ElementTree.Element) -> None:
        for attribute, value in element.attrib.items():
            if not attribute.startswith("file") or element.tag in ("include", "model"):
                continue
            candidates = self._candidates(value)
            self.exact &= bool(candidates)
            for candidate in candidates:
                if candidate in self.checked:
                    continue
                self.checked.add(candidate)
                data = self._regular(candidate, element, attribute, MAX_ASSET_BYTES)
                self._keep(self.assets, value, data)
                self.asset_bytes += len(data)
                if self.asset_bytes > MAX_ASSETS_BYTES:
                    raise ArmFileError(self.arm, f"names files of more than {MAX_ASSETS_BYTES // 2**20} MiB "
                                                 "together, more than reacher loads")

    def _keep(self, files: dict[str, bytes], name: str, data: bytes) -> None:
        key = os.path.basename(name)
        if key in self.includes or key in self.assets:
            self.exact &= (self.includes.get(key, self.assets.get(key)) == data)
        files[key] = data

    def _regular(self, path: Path, element, attribute: str, limit: int) -> bytes:
        try:
            return read_regular(path, limit)
        except UnreadableFile as err:
            raise ArmFileError(self.arm, f"<{element.tag} {attribute}=\"{element.get(attribute)}\">: "
                                         f"{path} {err.problem}") from None

    def _included(self, name: str, folder: Path) -> tuple[Path, list[ElementTree.Element]]:
        """The folder and the root's children of an included file, or none when it is
        missing, for MuJoCo to report. MuJoCo looks beside the including file and beside
        the arm: each that exists is read (and its folder searched for what it names)."""
        self.included += 1
        if self.included > MAX_INCLUDES:
            raise ArmFileError(self.arm, f"includes more than {MAX_INCLUDES} files (an <include> "
                                         "cycle?), more than reacher loads")
        places = [Path(name)] if os.path.isabs(name) else list(dict.fromkeys([folder / name, self.base / name]))
        found = [(path, *_read_mjcf(path, self.arm)) for path in places if os.path.lexists(path)]
        if not found:
            self.exact = False
            return folder, []
        for _, data, _ in found:
            self._keep(self.includes, name, data)
        path, _, root = found[0]
        if path.parent not in self.dirs:
            self.dirs.append(path.parent)
        return path.parent, list(root)

    def _check_sizes(self, element: ElementTree.Element) -> None:
        tag = element.tag
        if tag == "hfield":
            samples = self._dims(element, ("nrow", "ncol"), "hfield")
            if samples > MAX_HFIELD_SAMPLES:
                raise ArmFileError(self.arm, f"{_named(element)} has {samples:,} samples, more than the "
                                             f"{MAX_HFIELD_SAMPLES:,} (4096 x 4096) reacher loads")
        elif tag == "texture":
            pixels = self._dims(element, ("width", "height"), "texture")
            if element.get("builtin") and element.get("type") in _SIX_FACES:
                pixels *= 6
            if pixels > MAX_TEXTURE_PIXELS:
                raise ArmFileError(self.arm, f"{_named(element)} has {pixels:,} pixels, more than the "
                                             f"{MAX_TEXTURE_PIXELS:,} (8192 x 8192) reacher loads")
        elif tag == "mesh" and element.get("builtin"):
            vertices = _builtin_vertices(element)
            if vertices > MAX_MESH_VERTICES:
                raise ArmFileError(self.arm, f"{_named(element)} (builtin=\"{element.get('builtin')}\" params=\""
                                             f"{element.get('params')}\") would have about {vertices:,} vertices, "
                                             f"more than the {MAX_MESH_VERTICES:,} reacher loads")
        elif tag in ("quality", "global"):  # <visual>: buffers the renderer allocates
            for attribute in ("shadowsize", "offwidth", "offheight"):
                try:
                    side = int(float(element.get(attribute) or 0))
                except (ValueError, OverflowError):
                    continue
                if side > MAX_RENDER_SIDE:
                    raise ArmFileError(self.arm, f"<{tag} {attribute}=\"{element.get(attribute)}\">: more than the "
                                                 f"{MAX_RENDER_SIDE:,} pixels a side reacher renders")
        elif tag == "size" and element.get("memory"):
            memory = _bytes(element.get("memory"))
            if memory is not None and memory > MAX_ARENA_BYTES:
                raise ArmFileError(self.arm, f"<size memory=\"{element.get('memory')}\"> asks for more than the "
                                             f"{MAX_ARENA_BYTES:,} bytes of simulation memory reacher allows")

    def _dims(self, element: ElementTree.Element, attributes: tuple[str, str], kind: str) -> int:
        """Rows x columns (or pixels) as the element gives them, else as its file's header
        declares them (PNG, or MuJoCo's binary format: two int32 then the data)."""
        try:
            given = [int(float(element.get(a) or 0)) for a in attributes]
        except (ValueError, OverflowError):
            given = [0, 0]
        if given[0] > 0 and given[1] > 0:
            return given[0] * given[1]
        name = element.get("file")
        for path in self._candidates(name) if name else []:
            head = read_head(path, 24)
            if head.startswith(_PNG) and len(head) >= 24:
                width, height = struct.unpack(">II", head[16:24])
                return width * height
            if len(head) >= 8 and not path.suffix.lower() in (".jpg", ".jpeg", ".ktx", ".ktx2"):
                rows, cols = struct.unpack("<ii", head[:8])
                return max(rows, 0) * max(cols, 0)
        return 0


def _builtin_vertices(element: ElementTree.Element) -> int:
    """About how many vertices MuJoCo makes for a builtin mesh: its resolution squared (a
    supersphere of resolution 1000 took 40 s and 1.5 GB), or the product of a wedge's or a
    plate's two resolutions. MuJoCo bounds the sphere's and hemisphere's itself."""
    try:
        params = [abs(float(p)) for p in (element.get("params") or "").split()]
    except ValueError:
        return 0
    if not params or not all(math.isfinite(p) for p in params):
        return 0
    first = params[0]
    second = params[1] if element.get("builtin") in ("wedge", "plate") and len(params) > 1 else first
    return int(min(first * second, 2**62))


def _named(element: ElementTree.Element) -> str:
    name = element.get("name") or element.get("file")
    return f"<{element.tag}> '{name}'" if name else f"a <{element.tag}>"


def _bytes(text: str) -> int | None:
    """A <size memory> value ("64M", "1G", "5000") in bytes; None when unreadable."""
    text = text.strip()
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50, "E": 2**60}.get(text[-1:].upper())
    try:
        value = float(text[:-1] if scale else text)
    except ValueError:
        return None
    return int(value * (scale or 1)) if math.isfinite(value) else None
