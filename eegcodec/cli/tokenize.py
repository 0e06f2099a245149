"""``eegcodec tokenize DIR -o STORE``: a corpus of recordings -> a token store
(:mod:`eegcodec.tokenstore`: numpy memory maps and a JSON-lines manifest).

The verb runs through the CLI's corpus machinery (:mod:`eegcodec.cli.common`: ``--jobs``,
``--shard``, ``--skip-existing``, the progress bars and one-line errors per file).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .common import corpus_args, for_each_file, in_processes, model_args, model_device, shard


def add_parser(sub) -> None:
    t = sub.add_parser(
        "tokenize",
        help="EEG corpus -> token store (numpy memory maps + manifest) for training",
        description="Tokenize recordings (folders are searched recursively) into a token store: per "
        "recording STORE/records/<path>/codes.npy (int16 [rows, depth, frames]), meta.json and its "
        ".eegc file; STORE/manifest.jsonl lists every (recording, window). See eegcodec.tokenstore.",
    )
    t.add_argument("inputs", nargs="+", metavar="DIR", help="folder(s) of recordings, or recording files")
    t.add_argument("-o", "--output", required=True, metavar="STORE", help="the token store (a folder)")
    t.add_argument(
        "--codebooks", type=int, default=None, metavar="N", help="codebook depth (default: the model's)"
    )
    t.add_argument(
        "--window-frames",
        type=int,
        default=64,
        metavar="F",
        help="frames per manifest window (0: one window per recording; default: %(default)s)",
    )
    t.add_argument("-f", "--force", action="store_true", help="redo recordings already in the store")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    model_args(t)
    corpus_args(t)


def run(args) -> int:
    from ..errors import EegcodecError
    from ..tokenstore import STORE_FILE, write_manifest

    if args.window_frames < 0:
        raise EegcodecError(f"--window-frames must be 0 or more, got {args.window_frames}")
    store = Path(args.output)
    if store.exists() and not store.is_dir():
        raise EegcodecError(f"output {store} is a file; a token store is a folder")
    split = in_processes(args)  # --jobs N: N child processes, each a --shard
    if split is not None:
        if (store / STORE_FILE).is_file():  # the children are done: one manifest of all records
            _manifest_line(args, store, write_manifest(store, args.window_frames))
        return split
    jobs = _plan(args, store)
    return _tokenize_all(args, store, jobs)


def _plan(args, store: Path) -> list[tuple[Path, Path]]:
    """(recording, path relative to its folder) of this shard's recordings still to do; a
    recording already in the store is an error unless ``--skip-existing`` or ``--force``."""
    from ..errors import EegcodecError
    from ..io import find_inputs
    from ..tokenstore import is_complete, remove_partials

    inputs = find_inputs(args.inputs)
    rels = [rel for _, rel in inputs]
    if len(set(rels)) != len(rels):
        dup = next(r for r in rels if rels.count(r) > 1)
        raise EegcodecError(f"two inputs have the same path {dup} in their folders; tokenize them apart")
    rank, world = shard(args)
    jobs, skipped = [], 0
    for src, rel in inputs[rank::world]:
        if is_complete(store, rel) and not args.force:
            if not args.skip_existing:
                raise EegcodecError(
                    f"output exists: {store / 'records' / rel} (--skip-existing to resume, --force to redo)"
                )
            skipped += 1
            continue
        remove_partials(store, rel)  # this shard alone writes this record
        jobs.append((src, rel))
    if skipped and not args.quiet:
        print(f"skipping {skipped} recordings already in the store (--skip-existing)", file=sys.stderr)
    return jobs


def _tokenize_all(args, store: Path, jobs: list[tuple[Path, Path]]) -> int:
    from ..backends.registry import load_codec
    from ..tokens import tokenize
    from ..tokenstore import code_dtype, open_store, record_dir, write_manifest, write_record

    codec = load_codec(args.model, device=model_device(args))
    depth = args.codebooks or codec.info.default_codebooks
    codec.check_depth(depth)
    dtype = code_dtype(codec.info.codebook_size)
    settings = {
        "model": codec.info.name,
        "model_sha256": codec.info.weights_sha256,
        "depth": depth,
        "window_frames": args.window_frames,
        "dtype": dtype.name,
    }
    open_store(store, settings)
    rel_of = {src: rel for src, rel in jobs}

    def work(src: Path, dst: Path, progress) -> None:
        tokens = tokenize(src, codec, depth, progress=progress)  # threads sized per file
        write_record(store, rel_of[src], tokens, dtype, overwrite=args.force)

    status = for_each_file([(src, record_dir(store, rel)) for src, rel in jobs], args, work, "tokenized")
    _manifest_line(args, store, write_manifest(store, args.window_frames))
    return status


def _manifest_line(args, store: Path, n: int) -> None:
    if not args.quiet:
        print(f"{store / 'manifest.jsonl'}: {n} windows", file=sys.stderr)
