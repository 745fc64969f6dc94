"""The minimal Python inspector, the baseline an expert writes to peek into a checkpoint without torch and
without loading tensors: zipfile (or, for the legacy format, the pickles at the head of the file) plus an
Unpickler whose find_class and persistent_load return stubs. Prints one line per tensor: key path, dtype,
shape, storage key.

Usage: python peek.py FILE
"""
import pickle
import sys
import zipfile


class Obj:
    """Any class the pickle names: accepts whatever it is built with."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


class Dict(dict):
    """OrderedDict: a dict that BUILD can give attributes (a state dict's `_metadata`)."""


class Tensor:
    def __init__(self, storage, offset, size, stride, *rest):
        self.storage, self.size = storage, tuple(size)


class Peeker(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return Dict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return Tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, *rest: data
        if module == "torch" and name.endswith("Storage"):
            return name  # the dtype, as the persistent id names it
        return type(name, (Obj,), {})

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy: the same plus view metadata
        return pid[1], pid[2]


def walk(value, path, out):
    if isinstance(value, Tensor):
        out.append("%s %s %s %s" % (".".join(path), value.storage[0], list(value.size), value.storage[1]))
    elif isinstance(value, dict):
        for k, v in value.items():
            walk(v, path + [str(k)], out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            walk(v, path + [str(i)], out)


def peek(path):
    """The tensor lines of one checkpoint."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            with archive.open(name) as f:
                obj = Peeker(f).load()
    else:  # legacy: magic number, protocol, sys info, then the object; storages follow
        with open(path, "rb") as f:
            for _ in range(3):
                pickle.load(f)
            obj = Peeker(f).load()
    lines = []
    walk(obj, [], lines)
    return lines


if __name__ == "__main__":
    lines = peek(sys.argv[1])
    print("\n".join(lines))
    print("%d tensors" % len(lines))
