"""The files of a run folder as homeonorm writes them: numbers as Rust's ryu prints
them (so a folder written here matches homeonorm's byte for byte), every file under a
temporary name renamed into place when complete."""
import hashlib
import json
import math
import os


def ryu(x):
    """A float as Rust's ryu (homeonorm's CSV writer) writes it."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "-0.0" if math.copysign(1, x) < 0 else "0.0"
    sign, r = ("-" if x < 0 else ""), repr(abs(x))
    mant, exp = (r.split("e") + ["0"])[:2]
    whole, frac = (mant.split(".") + [""])[:2]
    digits = whole + frac
    point = len(whole) + int(exp)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    n, kk = len(digits), point
    if n <= kk <= 16:
        return sign + digits + "0" * (kk - n) + ".0"
    if 0 < kk <= 16:
        return sign + digits[:kk] + "." + digits[kk:]
    if -5 < kk <= 0:
        return sign + "0." + "0" * (-kk) + digits
    tail = "" if n == 1 else "." + digits[1:]
    return f"{sign}{digits[0]}{tail}e{kk - 1}"


def rust_display(x):
    """A float as Rust's `{}` formats it (folder names: lr0.003): never in exponent form."""
    text = ryu(x)
    if "e" not in text:
        return text[:-2] if text.endswith(".0") else text
    mant, exp = text.split("e")
    digits, point = mant.replace(".", ""), (mant.index(".") if "." in mant else len(mant)) + int(exp)
    return digits + "0" * (point - len(digits)) if point >= len(digits) else "0." + "0" * -point + digits


def cell(v):
    """A CSV cell: empty for an absent value (None)."""
    if v is None:
        return ""
    if isinstance(v, float):
        return ryu(v)
    return str(v)


def write_atomic(folder, name, data):
    """Writes bytes to folder/name through .name.tmp and a rename; returns the size."""
    tmp = os.path.join(folder, f".{name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(folder, name))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return len(data)


def write_csv(folder, name, columns, rows):
    lines = [",".join(columns)] + [",".join(cell(r[c]) for c in columns) for r in rows]
    return write_atomic(folder, name, ("\n".join(lines) + "\n").encode())


def write_json(folder, name, value):
    # allow_nan=False: NaN is not JSON; a value that is not finite is an error here, not a broken file.
    return write_atomic(folder, name, (json.dumps(value, indent=2, allow_nan=False) + "\n").encode())


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
