"""RunInfo.xml in the shape each instrument family writes it (element set, attribute order, layout)."""

from __future__ import annotations

from datetime import UTC, datetime

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.profiles import TileNaming
from seqferry_simulator.domain.spec import RunSpec
from seqferry_simulator.domain.xmlfmt import XSI_XSD, El, XmlStyle, el, el_attrs, render

CRLF = "\r\n"
MISEQ_STYLE = XmlStyle(indent="  ", newline=CRLF, empty=" />")
NEXTSEQ_STYLE = XmlStyle(indent="    ", newline=CRLF, empty="/>")
NOVASEQ_STYLE = XmlStyle(declaration='<?xml version="1.0" encoding="utf-8"?>', indent="\t", final_newline=True)
V6_STYLE = XmlStyle(indent="\t", empty="/>", final_newline=True)
NOVASEQX_STYLE = XmlStyle(indent="\t", empty=" />", final_newline=True)


def us_datetime(moment: datetime) -> str:
    """``8/2/2024 3:26:49 PM``, the Windows-era date NovaSeq 6000 and iSeq put in RunInfo."""
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {suffix}"


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(spec: RunSpec, number: int, cycles: int, is_index: bool, reverse: bool) -> El:
    yn = "Y" if is_index else "N"
    version = spec.profile.run_info_version
    if version == 2:
        return el("Read", NumCycles=cycles, Number=number, IsIndexedRead=yn)
    if version == 6:
        return el(
            "Read", Number=number, NumCycles=cycles, IsIndexedRead=yn, IsReverseComplement="Y" if reverse else "N"
        )
    return el("Read", Number=number, NumCycles=cycles, IsIndexedRead=yn)


def _layout(spec: RunSpec) -> El:
    fc = spec.flowcell
    base: dict[str, object] = {
        "LaneCount": fc.lanes,
        "SurfaceCount": fc.surfaces,
        "SwathCount": fc.swaths,
        "TileCount": fc.tiles_per_swath,
    }
    if spec.profile.run_info_version == 2:
        return el("FlowcellLayout", **base)
    if fc.naming is TileNaming.FIVE:
        base |= {"SectionPerLane": fc.sections_per_lane, "LanePerSection": fc.lanes_per_section}
    if spec.family is Instrument.NOVASEQ6000:
        base["FlowcellSide"] = 1 if spec.identity.side == "A" else 2
    tiles = el("Tiles", None, *(el("Tile", name) for name in fc.run_info_tiles()))
    return el("FlowcellLayout", None, el("TileSet", None, tiles, TileNamingConvention=fc.naming.value), **base)


def _date(spec: RunSpec) -> str:
    version = spec.profile.run_info_version
    if version == 6:
        return iso_utc(spec.started_at)
    if version == 5:
        return us_datetime(spec.started_at)
    return spec.started_at.strftime("%y%m%d")


def run_info_xml(spec: RunSpec) -> bytes:
    profile = spec.profile
    ident = spec.identity
    reads = el(
        "Reads",
        None,
        *(_read(spec, r.number, r.cycles, r.is_index, r.reverse_complement) for r in spec.reads.reads),
    )
    run = el(
        "Run",
        None,
        el("Flowcell", ident.flowcell_id),
        el("Instrument", ident.serial),
        el("Date", _date(spec)),
        reads,
        _layout(spec),
        Id=spec.run_id,
        Number=ident.run_number,
    )
    if profile.run_info_version == 2:
        root = el_attrs("RunInfo", [*XSI_XSD, ("Version", 2)], run)
        return render(root, MISEQ_STYLE)
    if spec.family is Instrument.NOVASEQ6000:
        run.add(el("AlignToPhiX"))
    if profile.image_dimensions:
        width, height = profile.image_dimensions
        run.add(el("ImageDimensions", Width=width, Height=height))
    run.add(el("ImageChannels", None, *(el("Name", name) for name in profile.channels)))
    root = el("RunInfo", None, run, Version=profile.run_info_version)
    style = {
        Instrument.NEXTSEQ500: NEXTSEQ_STYLE,
        Instrument.ISEQ100: NEXTSEQ_STYLE,
        Instrument.NOVASEQ6000: NOVASEQ_STYLE,
        Instrument.NOVASEQX: NOVASEQX_STYLE,
    }.get(spec.family, V6_STYLE)
    return render(root, style)
