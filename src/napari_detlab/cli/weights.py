"""``detlab weights``: which pretrained weights are on this machine, and downloading one.

Examples::

    detlab weights                          # list: name, what it is, size, present or not
    detlab weights download resnet18-imagenet
    detlab weights download resnet50-fpn-coco --from http://mirror.example/resnet50...pth

Nothing is ever downloaded unless asked for here (or with the train dock's button). The file
goes to torchvision's cache (``$TORCH_HOME/hub/checkpoints``) and is kept only when its
SHA-256 matches the hash its official name carries. Without a network, copy the file listed
by ``detlab weights`` to the path it shows.
"""

from __future__ import annotations

import argparse
import json
import sys

from napari_detlab.cli.verb import add_verb

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_verb(subparsers, "weights", run, __doc__)
    parser.add_argument("action", nargs="?", choices=("list", "download"), default="list")
    parser.add_argument("name", nargs="?", help="with download: the weights' name (see list)")
    parser.add_argument(
        "--from", dest="source", metavar="URL", help="download from this mirror of the file"
    )
    parser.add_argument("--json", action="store_true", help="list as JSON")


def run(args: argparse.Namespace) -> int:
    from napari_detlab.cli.main import CliError

    if args.action == "list":
        if args.name or args.source:
            raise CliError("list takes no name and no --from; did you mean download?")
        return _list(as_json=args.json)
    if not args.name:
        raise CliError("download needs the name of the weights (detlab weights lists them)")
    return _download(args.name, args.source)


def _list(*, as_json: bool) -> int:
    from napari_detlab.core.model.weights_catalog import known_weights

    catalog = known_weights()
    if as_json:
        rows = [
            {"name": w.name, "backbone": w.backbone, "start": w.start, "size_mb": w.size_mb,
             "present": w.present, "path": str(w.path), "url": w.url}
            for w in catalog
        ]  # fmt: skip
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(w.name) for w in catalog) + 2
    for w in catalog:
        state = "present" if w.present else "-"
        print(f"{w.name:<{width}}{w.title:<38}{w.size_mb:7.1f} MB  {state}")
    print(f"\nfolder: {catalog[0].path.parent}")
    return 0


def _download(name: str, source: str | None) -> int:
    from napari_detlab.core.model.download import download_weights, find_weights

    weights = find_weights(name)
    last = [-1]

    def progress(done: int, total: int) -> None:
        percent = int(100 * done / total) if total else -1
        if percent != last[0] and (percent % 10 == 0 or percent < 0):
            last[0] = percent
            shown = f"{percent}%" if total else f"{done / 1e6:.0f} MB"
            print(f"detlab weights: {weights.name} {shown}", file=sys.stderr)

    path = download_weights(weights, source=source, on_progress=progress)
    print(path)
    return 0
