"""``regate build``: a checked, self-contained, reproducible OPA bundle, signed if asked."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from adapters.cli.common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, missing_bundles, print_error
from engine.bundle.archive import write_archive
from engine.bundle.loader import Bundle, load_bundle
from engine.errors import BundleError, RegateError


def bundle_files(bundle: Bundle, revision: str | None) -> dict[str, bytes]:
    """The files of the built bundle: the source's, the Rego library it uses,
    and a manifest carrying ``revision``. Old signatures are dropped."""
    files = {path: data for path, data in bundle.files.items() if path != ".signatures.json"}
    for module in bundle.modules:
        if module.from_library:
            files[module.path] = module.text.encode("utf-8")
    if revision is not None or ".manifest" in files:
        manifest = json.loads(files.get(".manifest", b"{}"))
        if revision is not None:
            manifest["revision"] = revision
        files[".manifest"] = json.dumps(manifest, sort_keys=True, indent=2).encode("utf-8") + b"\n"
    return files


def run(args: argparse.Namespace) -> int:
    if missing_bundles([args.bundle]):
        return EXIT_USAGE
    try:
        bundle = load_bundle(args.bundle)
        files = bundle_files(bundle, args.revision)
        if args.signing_key:
            from engine.bundle.signing import sign_files

            files[".signatures.json"] = sign_files(
                files,
                key_pem_or_secret=Path(args.signing_key).read_bytes(),
                algorithm=args.signing_alg,
                key_id=args.signing_key_id,
                scope=args.scope,
            )
        data = write_archive(files)
        Path(args.output).write_bytes(data)
    except BundleError as exc:
        print_error(exc)
        return EXIT_PROBLEMS
    except (RegateError, OSError, ValueError) as exc:
        print_error(exc)
        return EXIT_USAGE
    signed = " (signed)" if args.signing_key else ""
    print(f"built {args.output}: {len(files)} files, {len(data)} bytes{signed}", file=sys.stderr)
    return EXIT_OK
