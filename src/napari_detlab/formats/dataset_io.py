"""The one join between the annotation store and the formats: import, export and convert.

Three entry points, shared by the CLI (``detlab import/export/convert``) and the Annotator's
menu:

- :func:`import_dataset` reads a format into a dataset's annotation store, matching each
  annotated image to the dataset's image by file name, then by stem. Images already annotated
  differently are kept unless ``overwrite=True``; boxes reaching outside their image (its real
  size, read from its header) are clipped and counted, and boxes wholly outside it are
  dropped and named; new classes are appended to the dataset's class list in the format's
  order. An image whose stem another image shares (``a.jpg``, ``a.png``) gets nothing: the
  store keeps one file per stem, so the boxes could land on the wrong image.
- :func:`export_dataset` writes the store's annotated images (reviewed, or with boxes) in a
  format; images never annotated are left out (and counted), so no format mistakes them for
  negatives. Each image is decoded first: one that cannot be, or whose boxes do not fit it,
  is left out and named. A dataset with nothing annotated is refused, not written empty.
- :func:`convert` goes from one format to another without a dataset; image sizes (which YOLO
  needs, and VOC and COCO write) come from the images found under the source folder, beside it
  (``images/``, ``input/``, ``JPEGImages/``) or in ``images=``. Boxes are fitted to their
  image as on import.

A file that cannot be written (a full disk, a read-only folder) stops an import or export
with :class:`~napari_detlab.formats.base.TargetWriteError` naming it; the files written
before it are whole.

Each returns a report (:class:`~napari_detlab.formats.reports.ImportReport` /
:class:`~napari_detlab.formats.reports.ExportReport`) listing what was done and every problem
with its file and line. ``on_progress(done, total, stage)`` is called every few dozen images.
VOC's ``difficult`` flags travel in the store's extra keys (:func:`set_difficult`,
:func:`get_difficult`), the one format detail the store keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from napari_detlab.core.annotations.annotation import (
    AnnotationError,
    ImageAnnotation,
    sanitize_boxes,
    validate_annotation,
)
from napari_detlab.core.annotations.store import (
    AmbiguousImageError,
    AnnotationStore,
    ClassSpec,
    next_color,
)
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.images import ImageReadError, read_image
from napari_detlab.core.stacks import export_name
from napari_detlab.core.wording import counted
from napari_detlab.formats.base import (
    Format,
    FormatError,
    ImageIndex,
    Problem,
    ProgressCallback,
    Record,
    TargetWriteError,
    complete_records,
    parallel_map,
    report_progress,
)
from napari_detlab.formats.plane_images import write_plane_images
from napari_detlab.formats.registry import get_format
from napari_detlab.formats.reports import ExportReport, ImportReport

__all__ = [
    "DIFFICULT_KEY",
    "convert",
    "export_dataset",
    "get_difficult",
    "import_dataset",
    "set_difficult",
]

IMAGE_FOLDER_NAMES = ("images", "input", "JPEGImages")
DIFFICULT_KEY = "difficult"
# The smallest box an import keeps, as ``sanitize_boxes``'s ``min_size``: any area at all,
# which is what the store accepts. The Annotator's one-pixel minimum is for a click in
# rectangle mode; here it would drop real one-pixel boxes that YOLO's six decimals or
# float32 bring back as 0.999999 pixel.
ANY_AREA = float(np.nextafter(0.0, 1.0))
Report = ImportReport | ExportReport


def _stage(on_progress: ProgressCallback | None, stage: str) -> Callable[[int, int], None] | None:
    if on_progress is None:
        return None
    return lambda done, total: on_progress(done, total, stage)


# -- import ------------------------------------------------------------------------------
def import_dataset(
    format: str | Format,
    source: str | Path,
    dataset: AnnotationStore | str | Path,
    *,
    on_progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> ImportReport:
    """Read ``source`` in ``format`` into the annotation store of the ``dataset`` folder.

    Parameters
    ----------
    format
        ``"coco"``, ``"voc"``, ``"yolo"`` or ``"tutorial"``.
    source
        The format's file or folder.
    dataset
        The folder of images, or its open store (the Annotator's, whose image list is
        then not listed again); annotations are written to ``dataset/annotations``.
    overwrite
        Replace annotations that exist and differ; by default they are kept and listed.
    """
    fmt = get_format(format)
    source, store = Path(source), AnnotationStore.of(dataset)
    store.tidy()
    index = ImageIndex(store.images)
    if not index.by_stem:
        raise FormatError(f"{store.root}: no images to import annotations for")
    read = fmt.read(source, index.size_of, _stage(on_progress, "reading"))
    report = ImportReport(
        format=fmt.name,
        source=source,
        dataset=store.root,
        skipped=read.skipped,
        problems=list(read.problems),
    )
    existing_classes = store.load_classes()
    groups = _group_by_image(complete_records(read.records, report.problems), index, store, report)
    to_save: list[tuple[Path, ImageAnnotation]] = []
    for image, records in groups.items():
        annotation = _annotation_for(image, records, index, report)
        if annotation is not None and _needs_saving(store, image, annotation, report, overwrite):
            to_save.append((image, annotation))
    errors = parallel_map(lambda item: _save(store, *item), to_save, _stage(on_progress, "writing"))
    used_labels: dict[str, None] = {}
    for (image, annotation), error in zip(to_save, errors, strict=True):
        if error is not None:
            report.problems.append(Problem(str(image), "", str(error)))
            continue
        used_labels.update(dict.fromkeys(annotation.labels))
        report.images += 1
        report.boxes += len(annotation)
        report.negatives += len(annotation) == 0
    if report.images:
        _add_classes(store, existing_classes, [*read.classes, *used_labels], report)
    return report


def _group_by_image(
    records: Iterable[Record], index: ImageIndex, store: AnnotationStore, report: ImportReport
) -> dict[Path, list[Record]]:
    """Records per dataset image (a file listed twice has its boxes merged).

    A record whose image shares its stem with another image is not imported: the store
    would write one file for both, whichever the record named.
    """
    groups: dict[Path, list[Record]] = {}
    for record in records:
        image = record.image or index.find(record)
        if image is None:
            report.unmatched.append(record.file_name or record.stem)
            continue
        try:
            store.check_one_image(image)
        except AmbiguousImageError as error:
            where = record.file_name or record.stem
            report.problems.append(Problem(record.source, where, f"not imported: {error.reason}"))
            continue
        groups.setdefault(image, []).append(record)
    for image, group in groups.items():
        if len(group) > 1:
            report.problems.append(
                Problem(
                    group[0].source,
                    "",
                    f"{image.name} is annotated {len(group)} times; the boxes were merged",
                )
            )
    return groups


def _annotation_for(
    image: Path, records: list[Record], index: ImageIndex, report: ImportReport
) -> ImageAnnotation | None:
    """The records of one image as a store annotation, cleaned by :func:`_fit_to_image`
    against the image's real size (read from its header)."""
    size = index.size(image)
    if size is None:
        report.problems.append(Problem(str(image), "", "the image cannot be read: not imported"))
        return None
    for record in records:
        if record.image_size is not None and tuple(record.image_size) != size:
            report.problems.append(
                Problem(
                    record.source,
                    record.file_name or record.stem,
                    f"says the image is {record.image_size[1]}x{record.image_size[0]} but "
                    f"{image.name} is {size[1]}x{size[0]}; boxes kept in pixels",
                )
            )
    labels = [label for record in records for label in record.labels]
    difficult = [flag for record in records for flag in record.difficult_flags()]
    clipped, keep = _fit_to_image(records, size, image.name, report)
    annotation = ImageAnnotation(
        boxes=clipped[keep],
        labels=[label for label, k in zip(labels, keep, strict=True) if k],
        reviewed=True,
        image_size=size,
    )
    flags = [flag for flag, k in zip(difficult, keep, strict=True) if k]
    if any(flags):
        set_difficult(annotation, flags)
    return annotation


def _fit_to_image(
    records: list[Record], size: tuple[int, int], image_name: str, report: Report
) -> tuple[np.ndarray, np.ndarray]:
    """The records' boxes clipped to an image of ``size``, and which of them to keep.

    The import's rule, :func:`~napari_detlab.core.annotations.annotation.sanitize_boxes`: a box
    reaching past the border is clipped and kept while it still has an area (people draw
    past the border: the tutorial's own heads overshoot by up to 18 px), counted in
    ``report.clipped_boxes``; a box wholly outside is dropped and named in the problems.
    """
    boxes = np.concatenate([record.boxes for record in records])
    clipped, keep = sanitize_boxes(boxes, size, min_size=ANY_AREA)
    report.clipped_boxes += int(((clipped != boxes).any(axis=1) & keep).sum())
    owners = [(record, number) for record in records for number in range(len(record.boxes))]
    for position in np.flatnonzero(~keep):
        record, number = owners[position]
        report.problems.append(
            Problem(
                record.source,
                record.file_name or record.stem,
                f"box {number} {record.boxes[number].tolist()} lies wholly outside the "
                f"{size[1]}x{size[0]} image {image_name}: dropped",
            )
        )
    return clipped, keep


def _needs_saving(
    store: AnnotationStore,
    image: Path,
    annotation: ImageAnnotation,
    report: ImportReport,
    overwrite: bool,
) -> bool:
    """Whether to write ``annotation``: not if identical, nor over different boxes unasked."""
    try:
        existing = store.load(image)
    except DetlabError as error:  # a corrupt file: never replaced behind the user's back
        if not overwrite:
            report.problems.append(Problem(str(store.path_for(image)), "", f"{error}; kept"))
            return False
        existing = None
    if existing is not None and annotation.same_as(existing):
        report.unchanged += 1
        return False
    if existing is not None and not overwrite:
        report.kept_existing.append(image.name)
        return False
    return True


def _save(store: AnnotationStore, image: Path, annotation: ImageAnnotation) -> DetlabError | None:
    """Write one annotation (on a writer thread).

    The store's refusal is returned, not raised, so one bad image is reported and the
    others are still written. A failed write (full disk, read-only folder) raises
    :class:`TargetWriteError` naming the file: every later write would fail too.
    """
    try:
        store.save(image, annotation)
    except OSError as error:  # first: a failed write (WriteError) is a DetlabError too
        raise TargetWriteError.of(store.path_for(image), error) from error
    except DetlabError as error:
        return error
    return None


def _add_classes(
    store: AnnotationStore,
    existing: list[ClassSpec],
    names: Iterable[str],
    report: ImportReport,
) -> None:
    """Append classes the dataset did not know, in the source's order, with fresh colours."""
    classes = list(existing)
    known = {spec.name for spec in classes}
    for name in dict.fromkeys(names):
        if name not in known:
            known.add(name)
            classes.append(ClassSpec(name, next_color(classes)))
            report.classes_added.append(name)
    if report.classes_added or not store.classes_path.is_file():
        try:
            store.save_classes(classes)
        except OSError as error:
            raise TargetWriteError.of(store.classes_path, error) from error


# -- difficult flags (VOC) ---------------------------------------------------------------
def set_difficult(annotation: ImageAnnotation, flags: list[bool]) -> None:
    """Keep VOC's ``difficult`` flags among the annotation's extra keys (one per box)."""
    annotation.extra[DIFFICULT_KEY] = [bool(flag) for flag in flags]


def get_difficult(annotation: ImageAnnotation) -> list[bool] | None:
    """The annotation's ``difficult`` flags, while they still fit its boxes (an edit in the
    Annotator that adds or removes boxes makes them stale, and then they are ignored)."""
    flags = annotation.extra.get(DIFFICULT_KEY)
    if flags is None or len(flags) != len(annotation):
        return None
    return [bool(flag) for flag in flags]


# -- export and convert --------------------------------------------------------------------
def export_dataset(
    dataset: AnnotationStore | str | Path,
    format: str | Format,
    target: str | Path,
    *,
    on_progress: ProgressCallback | None = None,
) -> ExportReport:
    """Write the annotated images of ``dataset`` to ``target`` in ``format``.

    Exported: every image with an annotation file that is reviewed or has boxes; a reviewed
    image without boxes is written as the format's negative. Images never annotated are
    left out and counted in ``left_out_unreviewed``. Every exported image is decoded first
    (in the ``"decoding"`` stage): one that cannot be decoded, or whose boxes do not fit its
    real size by the store's rule, is left out and named in the problems, so no format
    gets an image as if it were fine or a box outside its image. A plane of a stack is
    written as a PNG beside the labels (:mod:`~napari_detlab.formats.plane_images`).

    Raises
    ------
    FormatError
        Nothing annotated to export (or every annotated image was left out); nothing is
        written.
    TargetWriteError
        A file could not be written; those written before it are whole.
    """
    fmt = get_format(format)
    store, target = AnnotationStore.of(dataset), Path(target)
    classes = store.class_names()
    report = ExportReport(format=fmt.name, target=target)
    annotated = _annotated_images(store, report, _stage(on_progress, "reading"))
    records = _decoded_records(store, annotated, report, _stage(on_progress, "decoding"))
    if not records:
        raise FormatError(_nothing_to_export(store, report))
    _write(fmt, records, classes, target, report, on_progress)
    folder = fmt.target_file(target).parent if fmt.target_is_file else target
    report.files.extend(write_plane_images(records, folder, _stage(on_progress, "planes")))
    return report


def _annotated_images(
    store: AnnotationStore, report: ExportReport, on_progress: Callable[[int, int], None] | None
) -> list[tuple[Path, ImageAnnotation]]:
    """The images to export with their annotations; bad files are named in the problems
    (a file two images would share, once)."""
    chosen: list[tuple[Path, ImageAnnotation]] = []
    seen: set[Problem] = set()
    images = store.images
    for done, image in enumerate(images, start=1):
        report_progress(on_progress, done, len(images))
        try:
            annotation = store.load(image)
        except DetlabError as error:
            problem = Problem(str(store.path_for(image)), "", f"{error}; left out")
            if problem not in seen:
                seen.add(problem)
                report.problems.append(problem)
            continue
        if annotation is None or not annotation.trainable:
            report.left_out_unreviewed += 1
            continue
        chosen.append((image, annotation))
    return chosen


def _decoded_size(image: Path) -> tuple[int, int] | ImageReadError:
    """``(height, width)`` of the decoded pixels, or why they cannot be decoded."""
    try:
        pixels = read_image(image)
    except ImageReadError as error:
        return error
    return int(pixels.shape[0]), int(pixels.shape[1])


def _decoded_records(
    store: AnnotationStore,
    annotated: list[tuple[Path, ImageAnnotation]],
    report: ExportReport,
    on_progress: Callable[[int, int], None] | None,
) -> list[Record]:
    """The annotated images whose pixels decode and hold their boxes, as records.

    Decoding runs on the writer threads (the decoders release the GIL). A box is held to the
    decoded size by the store's rule: clipped within its tolerance, else the image is left
    out, so a file that says another size than the image has cannot smuggle a box out.
    """
    sizes = parallel_map(_decoded_size, [image for image, _ in annotated], on_progress)
    records: list[Record] = []
    for (image, annotation), size in zip(annotated, sizes, strict=True):
        source = str(store.path_for(image))
        if isinstance(size, ImageReadError):
            reason = str(size).removeprefix(f"{image}: ")
            report.problems.append(Problem(str(image), "", f"{reason}; left out"))
            continue
        if annotation.image_size != size:
            try:
                annotation = validate_annotation(
                    {**annotation.to_dict(), "image_size": list(size)}, source=source
                )
            except AnnotationError as error:
                reason = str(error).removeprefix(f"{source}: ")
                if annotation.image_size is not None:
                    (said_h, said_w), (height, width) = annotation.image_size, size
                    reason = (
                        f"{image.name} is {width}x{height}, not {said_w}x{said_h} as the file "
                        f"says, and {reason}"
                    )
                report.problems.append(Problem(source, "", f"{reason}; left out"))
                continue
        records.append(
            Record(
                stem=image.stem,
                file_name=export_name(image),
                image=image,
                boxes=annotation.boxes,
                labels=annotation.labels,
                image_size=size,
                difficult=get_difficult(annotation),
                source=source,
            )
        )
    return records


def _nothing_to_export(store: AnnotationStore, report: ExportReport) -> str:
    """The one line that refuses an export which would write no image."""
    if report.problems:
        return (
            f"{store.root}: nothing annotated to export: every annotated image was left out "
            f"({counted(len(report.problems), 'problem')}; the first: {report.problems[0]})"
        )
    return (
        f"{store.root}: nothing annotated to export; draw boxes (or mark images reviewed) in "
        "the Annotator, or import annotations, first"
    )


def convert(
    source_format: str | Format,
    source: str | Path,
    target_format: str | Format,
    target: str | Path,
    *,
    images: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> ExportReport:
    """Read ``source`` in one format and write it to ``target`` in another, no dataset needed.

    ``images`` is the folder of the images when it is not under or beside the source; their
    headers give the sizes YOLO needs to read and VOC, COCO and YOLO need to write.
    """
    reader, writer = get_format(source_format), get_format(target_format)
    source, target = Path(source), Path(target)
    written = {target.resolve(), writer.target_file(target).resolve()}
    if reader is writer and source.resolve() in written:
        raise FormatError(f"{target}: converting a {reader.name} source onto itself")
    if images is not None:
        index = ImageIndex.scan([Path(images)])
    else:
        index = ImageIndex.scan(*_image_folders(source))
    read = reader.read(source, index.size_of, _stage(on_progress, "reading"))
    for record in read.records:
        if record.image_size is None:
            record.image_size = index.size_of(record)
    labels = (label for record in read.records for label in record.labels)
    classes = list(dict.fromkeys([*read.classes, *labels]))
    report = ExportReport(
        format=writer.name, target=target, skipped=read.skipped, problems=list(read.problems)
    )
    records = complete_records(read.records, report.problems)
    for record in records:
        if record.image_size is not None and len(record.boxes):
            _fit_record(record, report)
    _write(writer, records, classes, target, report, on_progress)
    return report


def _fit_record(record: Record, report: ExportReport) -> None:
    """Fit ``record``'s boxes to its image size by the import's rule (:func:`_fit_to_image`),
    so that convert never writes a box outside its image either."""
    assert record.image_size is not None
    clipped, keep = _fit_to_image([record], record.image_size, record.output_name, report)
    if not keep.all():
        record.labels = [label for label, k in zip(record.labels, keep, strict=True) if k]
        if record.difficult is not None:
            record.difficult = [f for f, k in zip(record.difficult, keep, strict=True) if k]
    record.boxes = clipped[keep]


def _image_folders(source: Path) -> tuple[list[Path], list[Path]]:
    """Where a source's images may be: folders to search recursively, and one to look in.

    Most likely first, as the first image found for a stem wins: a usual image folder inside
    the source (``images/``, ``input/``, ``JPEGImages/``), then beside it (the tutorial's
    ``input/`` next to ``target/``, VOC's ``JPEGImages/`` next to ``Annotations/``), then
    the source folder itself. A source *file*'s own folder is only looked in, not searched,
    so a COCO file in a home folder does not start a walk through the whole disk.
    """
    root = source if source.is_dir() else source.parent
    named = [root / name for name in IMAGE_FOLDER_NAMES]
    named += [root.parent / name for name in IMAGE_FOLDER_NAMES]
    folders = [folder for folder in named if folder.is_dir() and folder.resolve() != root.resolve()]
    if source.is_dir():
        return [*folders, root], []
    return folders, [root]


def _write(
    fmt: Format,
    records: list[Record],
    classes: list[str],
    target: Path,
    report: ExportReport,
    on_progress: ProgressCallback | None,
) -> None:
    """Write the records a format can take, and count them in ``report``."""
    if fmt.needs_image_size:
        unknown = [record for record in records if record.image_size is None]
        report.problems.extend(
            Problem(
                record.source or record.stem,
                record.file_name or record.stem,
                f"image size unknown (no image found): not written as {fmt.name}",
            )
            for record in unknown
        )
        records = [record for record in records if record.image_size is not None]
    files, problems = fmt.write(records, classes, target, _stage(on_progress, "writing"))
    report.files.extend(files)
    report.problems.extend(problems)
    report.images += len(records)
    report.boxes += sum(len(record.labels) for record in records)
    report.negatives += sum(len(record.labels) == 0 for record in records)
