#!/usr/bin/env python3
"""Size of each function's release bootstrap and of its deployment zip (issue 12, "Size").

    python3 infra/bench/size.py [--bin-dir target/release] [--out-dir target/bench]

For each of ingest, validate, dispatch and callback: the binary's size, the size of a zip holding it as
`bootstrap` (what Lambda is given) at deflate level 9 and at zlib's default level 6 (what `sam build` /
`sam deploy` upload: Python's zipfile with ZIP_DEFLATED), and what the bytes are (the ELF sections: code,
read-only data, unwinding tables). Writes size.json and size.md (a "## Size" section). The measured
variants of the build (infra/bench/size-variants.json, measured once, not rerun here) are shown beside.
"""

import argparse
import io
import json
import os
import struct
import sys
import zipfile

FUNCTIONS = ["ingest", "validate", "dispatch", "callback"]
TARGET_ZIP_MIB = 4.0
MIB = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def zipped(data: bytes, level: int) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=level)
    return len(buffer.getvalue())


def sections(data: bytes) -> dict:
    """Section name -> size in bytes, for a 64-bit little-endian ELF file ({} for anything else)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return {}
    e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if e_shoff == 0 or e_shnum == 0 or e_shoff + e_shnum * e_shentsize > len(data):
        return {}

    def header(i):
        base = e_shoff + i * e_shentsize
        name, kind, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, base)
        return name, kind, offset, size

    _, _, str_offset, str_size = header(e_shstrndx)
    names = data[str_offset:str_offset + str_size]
    out = {}
    for i in range(1, e_shnum):
        name_at, kind, _offset, size = header(i)
        end = names.find(b"\0", name_at)
        name = names[name_at:end].decode("ascii", "replace")
        if kind == 8:  # SHT_NOBITS (.bss): takes no room in the file
            continue
        out[name] = out.get(name, 0) + size
    return out


def group(section_sizes: dict) -> dict:
    """Sections in a few groups a reader can act on."""
    groups = {"code (.text)": 0, "read-only data (.rodata)": 0,
              "unwinding (.eh_frame, .eh_frame_hdr, .gcc_except_table)": 0,
              "relocated data (.data.rel.ro, .data, .got, relocations)": 0, "other": 0}
    for name, size in section_sizes.items():
        if name.startswith(".text"):
            groups["code (.text)"] += size
        elif name.startswith(".rodata"):
            groups["read-only data (.rodata)"] += size
        elif name in (".eh_frame", ".eh_frame_hdr", ".gcc_except_table"):
            groups["unwinding (.eh_frame, .eh_frame_hdr, .gcc_except_table)"] += size
        elif name.startswith((".data", ".got", ".rela", ".init_array", ".fini_array", ".tdata")):
            groups["relocated data (.data.rel.ro, .data, .got, relocations)"] += size
        else:
            groups["other"] += size
    return groups


def mib(n: float) -> str:
    return f"{n / MIB:.2f}"


def verdict(figure: float, limit: float) -> str:
    if figure <= limit:
        return "met"
    return f"missed by {(figure / limit - 1) * 100:.0f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "target", "bench"))
    parser.add_argument("--variants", default=os.path.join(ROOT, "infra", "bench", "size-variants.json"))
    parser.add_argument("--command", default="bash infra/bench/coldstart.sh --size-only")
    args = parser.parse_args()

    results = []
    for name in FUNCTIONS:
        path = os.path.join(args.bin_dir, name)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as error:
            print(f"size.py: cannot read {path}: {error} (build it: cargo build --release -p {name})",
                  file=sys.stderr)
            return 1
        section_sizes = sections(data)
        results.append({
            "function": name,
            "binary": os.path.relpath(path, ROOT),
            "bytes": len(data),
            "stripped": ".symtab" not in section_sizes,
            "zip9_bytes": zipped(data, 9),
            "zip6_bytes": zipped(data, 6),
            "groups": group(section_sizes),
            "sections": section_sizes,
        })

    variants = None
    if os.path.exists(args.variants):
        with open(args.variants) as f:
            variants = json.load(f)

    os.makedirs(args.out_dir, exist_ok=True)
    report = {"command": args.command, "target_zip_mib": TARGET_ZIP_MIB, "functions": results,
              "variants": variants}
    with open(os.path.join(args.out_dir, "size.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")

    lines = ["## Size", "",
             f"Each function's release binary (`cargo build --release -p <function>`; the root Cargo.toml's "
             f"release profile strips symbols) and a zip holding it as `bootstrap`, as Lambda is given it: "
             f"deflate level 9, and zlib's default level 6, which is what `sam build`/`sam deploy` upload "
             f"(Python's zipfile). The target applies to the level-6 zip, the one deployed.", "",
             f"Rerun alone: `{args.command}`", "",
             "| Function | Binary, MiB | Stripped | Zip (level 9), MiB | Zip as deployed (level 6), MiB "
             "| Target | Verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        target_bytes = TARGET_ZIP_MIB * MIB
        lines.append(f"| {r['function']} | {mib(r['bytes'])} | {'yes' if r['stripped'] else 'no'} | "
                     f"{mib(r['zip9_bytes'])} | {mib(r['zip6_bytes'])} | < {TARGET_ZIP_MIB:g} MiB | "
                     f"{verdict(r['zip6_bytes'], target_bytes)} |")
    lines += ["", "What the bytes are (ELF sections of each binary, MiB):", ""]
    names = list(results[0]["groups"]) if results else []
    lines.append("| Function | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for r in results:
        lines.append(f"| {r['function']} | " + " | ".join(mib(r["groups"][n]) for n in names) + " |")
    if variants:
        lines += ["", f"### Build variants measured", "", variants.get("about", ""), ""]
        columns = variants.get("columns", [])
        lines.append("| " + " | ".join(c["title"] for c in columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in variants.get("rows", []):
            lines.append("| " + " | ".join(str(row.get(c["key"], "")) for c in columns) + " |")
        for note in variants.get("notes", []):
            lines += ["", note]
    with open(os.path.join(args.out_dir, "size.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {os.path.join(args.out_dir, 'size.json')} and size.md", file=sys.stderr)
    for r in results:
        print(f"{r['function']:<9} {mib(r['bytes'])} MiB, zip -9 {mib(r['zip9_bytes'])} MiB, "
              f"zip -6 {mib(r['zip6_bytes'])} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
