"""RunParameters.xml per instrument family, element for element like the reference files and public examples.

Consumable serials, lots and software versions are plausible values derived from the run's seed.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.runinfo import CRLF, iso_utc
from seqferry_simulator.domain.spec import RunSpec, seeded
from seqferry_simulator.domain.xmlfmt import XSI_FIRST, XSI_XSD, El, XmlStyle, el, el_attrs, render

WINDOWS_STYLE = XmlStyle(indent="  ", newline=CRLF, empty=" />")
NEXTSEQ_STYLE = XmlStyle(indent="    ", newline=CRLF, empty="/>")
LINUX_STYLE = XmlStyle(indent="  ", empty=" />")
NOVASEQX_STYLE = XmlStyle(declaration='<?xml version="1.0" encoding="utf-8"?>', indent="  ", empty=" />")


def _tf(value: bool) -> str:
    return "true" if value else "false"


class _Consumables:
    """Serial numbers, lots and dates of the kit, reproducible from the run's seed."""

    def __init__(self, spec: RunSpec) -> None:
        self._rng = seeded("consumables", spec.seed)
        self.started = spec.started_at

    def digits(self, n: int) -> str:
        return "".join(self._rng.choice(string.digits) for _ in range(n))

    def serial(self, prefix: str, suffix: str) -> str:
        return f"{prefix}{self.digits(7)}-{suffix}"

    def expiry(self, days: int) -> datetime:
        return (self.started + timedelta(days=days + self._rng.randint(0, 90))).replace(
            hour=0, minute=0, second=0, microsecond=0
        )


def _miseq(spec: RunSpec, c: _Consumables) -> bytes:
    run_id, ident, fc = spec.run_id, spec.identity, spec.flowcell
    pr2, kit = c.serial("MS", "00PR2"), c.serial("MS", "300V2")
    exp = "%Y-%m-%dT%H:%M:%S"
    reads = el(
        "Reads",
        None,
        *(
            el("RunInfoRead", Number=r.number, NumCycles=r.cycles, IsIndexedRead="Y" if r.is_index else "N")
            for r in spec.reads.reads
        ),
    )
    root = el_attrs(
        "RunParameters",
        list(XSI_XSD),
        el("EnableCloud", "false"),
        el("CopyManifests", "true"),
        el(
            "FlowcellRFIDTag",
            None,
            el("SerialNumber", ident.flowcell_id),
            el("PartNumber", "15028382"),
            el("ExpirationDate", c.expiry(200).strftime(exp)),
        ),
        el(
            "PR2BottleRFIDTag",
            None,
            el("SerialNumber", pr2),
            el("PartNumber", "15041807"),
            el("ExpirationDate", c.expiry(200).strftime(exp)),
        ),
        el(
            "ReagentKitRFIDTag",
            None,
            el("SerialNumber", kit),
            el("PartNumber", "15033572"),
            el("ExpirationDate", c.expiry(200).strftime(exp)),
        ),
        el("Resumable", "true"),
        el("ManifestFiles"),
        el("AfterRunWashMethod", "Post-Run Wash"),
        el(
            "Setup",
            None,
            el("SupportMultipleSurfacesInUI", "true"),
            el("ApplicationVersion", spec.profile.application_version),
            el("NumTilesPerSwath", fc.tiles_per_swath),
            el("NumSwaths", fc.swaths),
            el("NumLanes", fc.lanes),
            el("ApplicationName", spec.profile.application),
        ),
        el("RunID", run_id),
        el("ScannerID", ident.serial),
        el("RunNumber", ident.run_number),
        el("FPGAVersion", "9.5.12"),
        el("MCSVersion", spec.profile.application_version),
        el("RTAVersion", spec.profile.rta_version),
        el("Barcode", ident.flowcell_id),
        el("PR2BottleBarcode", pr2),
        el("ReagentKitPartNumberEntered"),
        el("ReagentKitVersion", "Version2" if fc.name.startswith("v2") else "Version3"),
        el("ReagentKitBarcode", kit),
        el("PreviousPR2BottleBarcode"),
        el("PreviousReagentKitBarcode"),
        el("ExperimentName", run_id),
        el("Chemistry", "Amplicon"),
        el("Username", "sbsuser"),
        el("Workflow", None, el("Analysis", "GenerateFASTQ")),
        el("EnableAnalysis", "false"),
        reads,
        el("TempFolder", f"D:\\Illumina\\MiSeqTemp\\{run_id}"),
        el("AnalysisFolder", f"D:\\Illumina\\MiSeqAnalysis\\{run_id}"),
        el("RunStartDate", spec.started_at.strftime("%y%m%d")),
        el("MostRecentWashType", "PostRun"),
        el("RecipeFolder", "D:\\Illumina\\MiSeq Control Software\\CustomRecipe"),
        el("ILMNOnlyRecipeFolder", "C:\\Illumina\\MiSeq Control Software\\Recipe"),
        el("SampleSheetName", kit),
        el("SampleSheetFolder", "\\\\nas\\sequencers\\samplesheets"),
        el("ManifestFolder", "D:\\Illumina\\MiSeq Control Software\\Manifests"),
        el("OutputFolder", f"\\\\nas\\sequencers\\incoming\\miseq\\{run_id}"),
        el("FocusMethod", "AutoFocus"),
        el("SurfaceToScan", "Both"),
        el("SaveFocusImages", "false"),
        el("SaveScanImages", "true"),
        el("CloudUsername"),
        el("CloudRunId", c.digits(7)),
        el("SendInstrumentHealthToILMN", "true"),
        el("AmpliconWorkflowType"),
    )
    return render(root, WINDOWS_STYLE)


def _nextseq500(spec: RunSpec, c: _Consumables) -> bytes:
    r1, r2, i1, i2 = spec.planned_cycles
    run_id, ident, fc, profile = spec.run_id, spec.identity, spec.flowcell, spec.profile
    buffer, reagent = c.serial("NS", "BUFFR"), c.serial("NS", "REAGT")
    exp = "%Y-%m-%dT%H:%M:%S"

    def rfid(tag: str, serial: str, part: str) -> El:
        return el(
            tag,
            None,
            el("SerialNumber", serial),
            el("PartNumber", part),
            el("ExpirationDate", c.expiry(180).strftime(exp)),
        )

    prerun = f"{ident.serial}_{spec.started_at:%Y-%m-%d__%H_%M_%S}"
    root = el(
        "RunParameters",
        None,
        el("RunParametersVersion", "NextSeq_4_0_0"),
        el(
            "Setup",
            None,
            el("SupportMultipleSurfacesInUI", "true"),
            el("ApplicationVersion", profile.application_version),
            el("ApplicationName", profile.application),
            el("NumTilesPerSwath", fc.tiles_per_swath),
            el("NumSwaths", fc.swaths),
            el("NumLanes", fc.lanes),
            el("Read1", r1),
            el("Read2", r2),
            el("Index1Read", i1),
            el("Index2Read", i2),
            el("SectionPerLane", fc.sections_per_lane),
            el("LanePerSection", fc.lanes_per_section),
        ),
        el("RunID", run_id),
        el("InstrumentID", ident.serial),
        el("RunNumber", ident.run_number),
        el("RTAVersion", profile.rta_version),
        el("SystemSuiteVersion", profile.application_version),
        rfid("FlowCellRfidTag", ident.flowcell_id, "20022408"),
        rfid("PR2BottleRfidTag", buffer, "15057941"),
        rfid("ReagentKitRfidTag", reagent, "20024907"),
        el("FlowCellSerial", ident.flowcell_id),
        el("PR2BottleSerial", buffer),
        el("ReagentKitSerial", reagent),
        el("ReagentKitSerialWasEnteredInBaseSpace", "false"),
        el("ExperimentName", run_id),
        el("LibraryID"),
        el("Chemistry", "NextSeq High"),
        el("SelectedTiles", None, *(el("Tile", name) for name in fc.run_info_tiles())),
        el("RunFolder", f"D:\\Illumina\\NextSeq Control Software Temp\\{run_id}\\"),
        el("RTALogsFolder"),
        el("PreRunFolderRoot", "D:\\Illumina\\NextSeq Control Software PreRun"),
        el("PreRunFolder", f"D:\\Illumina\\NextSeq Control Software PreRun\\{prerun}"),
        el("OutputFolder", f"\\\\nas\\sequencers\\incoming\\nextseq\\{run_id}\\"),
        el("RecipeFolder", "C:\\Illumina\\NextSeq Control Software\\Recipe\\High\\v2.5"),
        el("SimulationFolder"),
        el("RunStartDate", spec.started_at.strftime("%y%m%d")),
        el("FocusMethod", "IXFocus"),
        el("SurfaceToScan", "Both"),
        el("SaveFocusImages", "false"),
        el("SaveScanImages", "false"),
        el("SelectiveSave", "true"),
        el("IsPairedEnd", _tf(r2 > 0)),
        el("AnalysisWorkflowType"),
        el("CustomReadOnePrimer", "BP10"),
        el("CustomReadTwoPrimer", "BP11"),
        el("CustomIndexPrimer", "BP14"),
        el("CustomIndexTwoPrimer", "BP14"),
        el("UsesCustomReadOnePrimer", "false"),
        el("UsesCustomReadTwoPrimer", "false"),
        el("UsesCustomIndexPrimer", "false"),
        el("UsesCustomIndexTwoPrimer", "false"),
        el("RunManagementType", "Standalone"),
        el("InstrumentHealthRunId", c.digits(8)),
        el("BaseSpaceRunMode", "IlluminaHealthOnly"),
        el("ComputerName", f"NB-CONTROL{ident.serial[-2:]}"),
        el("SequencingStarted", "true"),
        el("PlannedRead1Cycles", r1),
        el("PlannedRead2Cycles", r2),
        el("PlannedIndex1ReadCycles", i1),
        el("PlannedIndex2ReadCycles", i2),
        el("IsRehyb", "false"),
        el("PurgeConsumables", "true"),
        el("MaxCyclesSupportedByReagentKit", spec.total_cycles + 5),
        el("IncludedFile"),
    )
    return render(root, NEXTSEQ_STYLE)


def _iseq(spec: RunSpec, c: _Consumables) -> bytes:
    r1, r2, i1, i2 = spec.planned_cycles
    run_id, ident, fc, profile = spec.run_id, spec.identity, spec.flowcell, spec.profile
    exp = "%Y-%m-%dT%H:%M:%S"
    root = el_attrs(
        "RunParameters",
        list(XSI_XSD),
        el("RunParametersVersion", "iSeq_1_3_0"),
        el(
            "Setup",
            None,
            el("SupportMultipleSurfacesInUI", "false"),
            el("ApplicationVersion", profile.application_version),
            el("ApplicationName", profile.application),
            el("NumTilesPerSwath", fc.tiles_per_swath),
            el("NumSwaths", fc.swaths),
            el("NumLanes", fc.lanes),
            el("Read1", r1),
            el("Read2", r2),
            el("Index1Read", i1),
            el("Index2Read", i2),
        ),
        el("RunId", run_id),
        el("InstrumentID", ident.serial),
        el("RunCounter", ident.run_number),
        el("RTAVersion", profile.rta_version),
        el("SystemSuiteVersion", profile.application_version),
        el(
            "FlowCellRfidTag",
            None,
            el("SerialNumber", ident.flowcell_id),
            el("PartNumber", "20021534"),
            el("ExpirationDate", c.expiry(180).strftime(exp)),
        ),
        el(
            "ReagentKitRfidTag",
            None,
            el("SerialNumber", c.serial("FS", "RGT")),
            el("PartNumber", "20021533"),
            el("ExpirationDate", c.expiry(180).strftime(exp)),
        ),
        el("ExperimentName", run_id),
        el("PlannedRead1Cycles", r1),
        el("PlannedRead2Cycles", r2),
        el("PlannedIndex1ReadCycles", i1),
        el("PlannedIndex2ReadCycles", i2),
        el("RunStartDate", spec.started_at.strftime("%Y%m%d")),
        el("OutputFolder", f"\\\\nas\\sequencers\\incoming\\iseq\\{run_id}"),
    )
    return render(root, WINDOWS_STYLE)


def _novaseq6000(spec: RunSpec, c: _Consumables) -> bytes:
    r1, r2, i1, i2 = spec.planned_cycles
    run_id, ident, fc, profile = spec.run_id, spec.identity, spec.flowcell, spec.profile
    us = "%m/%d/%Y %H:%M:%S"
    start = spec.started_at.strftime(us)
    kit_cycles = max(spec.total_cycles + 10, 338)

    def consumable(name: str, serial: str, part: str, modes: str, *tail: tuple[str, object]) -> list[El]:
        head = [
            el(f"{name}SerialBarcode", serial),
            el(f"{name}SupportedModes", modes),
            el(f"{name}PartNumber", part),
            el(f"{name}LotNumber", c.digits(8)),
            el(f"{name}Expirationdate", c.expiry(300).strftime(us)),
        ]
        return head + [el(f"{name}{field}", value) for field, value in tail]

    remaining = kit_cycles - spec.total_cycles
    rfids = el(
        "RfidsInfo",
        None,
        el("FlowCellSerialBarcode", ident.flowcell_id),
        el("FlowCellPartNumber", "20015846"),
        el("FlowCellLotNumber", c.digits(8)),
        el("FlowCellExpirationdate", c.expiry(300).strftime(us)),
        el("FlowCellStartDate", start),
        el("FlowCellNumberOfReuseRemaining", 1),
        el("FlowCellSupportedModes", f"{fc.name};LTWashOnly"),
        el("FlowCellMode", fc.name),
        el("FlowCellConsumableVersion", 1),
        el("FlowCellRssi", 2),
        *consumable("LibraryTube", c.serial("NV", "LIB"), "20005221", "Universal", ("StartDate", start), ("Rssi", 4)),
        *consumable(
            "Sbs",
            c.serial("NV", "RGSBS"),
            "20031054",
            fc.name,
            ("StartDate", start),
            ("CycleKit", kit_cycles),
            ("NumberOfCyclesRemaining", remaining),
            ("NumberOfCyclesSupported", kit_cycles),
            ("ConsumableVersion", 3),
            ("Rssi", 4),
        ),
        *consumable(
            "Cluster",
            c.serial("NV", "RGCPE"),
            "20031058",
            fc.name,
            ("StartDate", start),
            ("CycleKit", kit_cycles),
            ("NumberOfCyclesRemaining", remaining),
            ("Rssi", 5),
        ),
        *consumable(
            "Buffer",
            c.serial("NV", "BUFFR"),
            "20013524",
            fc.name,
            ("NumberOfCyclesRemaining", 2),
            ("StartDate", start),
            ("Rssi", 4),
        ),
    )
    boards = (
        ("Fluidics Board", "novaseq_flu"),
        ("Camera Interface Board", "novaseq_cib_2"),
        ("Flow Cell Holder Board", "novaseq_fch_2"),
    )
    firmware = el(
        "FirmwareVersions",
        None,
        *(
            el("FirmwareVersion", None, el("Board", board), el("Version", f"{image}@NovaSeq_1.26.10"))
            for board, image in boards
        ),
    )
    nas_folder = f"\\\\nas\\sequencers\\incoming\\novaseq\\{run_id}\\"
    temp = "C:\\ProgramData\\Illumina\\NovaSeq\\NovaSeqTemp"
    root = el_attrs(
        "RunParameters",
        list(XSI_XSD),
        el("Surface", "Both"),
        el("ReadType", "PairedEnd" if r2 else "SingleRead"),
        el("Side", ident.side),
        el("Read1NumberOfCycles", r1),
        el("Read2NumberOfCycles", r2),
        el("IndexRead1NumberOfCycles", i1),
        el("IndexRead2NumberOfCycles", i2),
        el("PlannedRead1Cycles", r1),
        el("PlannedRead2Cycles", r2),
        el("PlannedIndex1ReadCycles", i1),
        el("PlannedIndex2ReadCycles", i2),
        el("RunNumber", ident.run_number),
        el("RtaVersion", profile.rta_version),
        el("RecipeVersion", "1.8.0"),
        el("ExperimentName", run_id),
        rfids,
        el("RecipeFilePath", "C:\\Program Files\\Illumina\\NovaSeq Control Software\\Recipe"),
        el("SamplesheetFile"),
        el("UsedLimsSetup", "false"),
        el("CeLinuxRunFolder", f"/ilmn/outputfolder/{run_id}/"),
        el("RtaRawRunFolder", "/ilmn/outputfolder"),
        el("CeMountRunFolder", f"Z:\\outputfolder\\{run_id}\\"),
        el("OutputRunFolder", nas_folder),
        el("OutputRootFolder", "\\\\nas\\sequencers\\incoming\\novaseq"),
        el("SbcRunFolder", f"{temp}\\{run_id}\\"),
        el(
            "PreRunFolder",
            f"{temp}\\RunSetupLogs\\{ident.serial}_{spec.started_at:%Y-%m-%d__%H_%M_%S}_Side{ident.side}",
        ),
        el("RunStartDate", spec.started_at.strftime("%y%m%d")),
        el("RunId", run_id),
        el("UseBaseSpace", "false"),
        el("UseBaseSpaceMonitoringAndStorage", "false"),
        el("BaseSpaceRunId", c.digits(7)),
        el("Autocenter", "true"),
        el("BiDirectionalScanning", "true"),
        el("UseCustomRecipe", "false"),
        el("UseCustomRead1Primer", "false"),
        el("UseCustomRead2Primer", "false"),
        el("UseCustomIndexRead1Primer", "false"),
        el("IsRehyb", "false"),
        el("InstrumentName", ident.serial),
        el("PlatformType", "HighThroughput"),
        el("Application", profile.application),
        el("ApplicationVersion", profile.application_version),
        el("Build", 59),
        firmware,
        el("SendIlluminaHealthData", "true"),
        el("UcsRunId", f"{c.digits(8)}{c.digits(8)}"),
        el("UcsVersion", "2.7.3.4836"),
        el("RunSetupMode", "Manual"),
        el("WorkflowType", "NovaSeqStandard"),
    )
    return render(root, WINDOWS_STYLE)


def _nextseq2000(spec: RunSpec, c: _Consumables, ended_at: datetime | None) -> bytes:
    r1, r2, i1, i2 = spec.planned_cycles
    run_id, ident, profile = spec.run_id, spec.identity, spec.profile
    done = ended_at is not None

    def cycles(tag: str, factor: int) -> El:
        return el(
            tag,
            None,
            el("Read1", r1 * factor),
            el("Index1", i1 * factor),
            el("Index2", i2 * factor),
            el("Read2", r2 * factor),
        )

    root = el_attrs(
        "RunParameters",
        list(XSI_FIRST),
        el("SampleSheetFilePath", f"/usr/local/illumina/runs/setup/{run_id}/SampleSheetImport/SampleSheet.csv"),
        cycles("PlannedCycles", 1),
        cycles("CompletedCycles", 1 if done else 0),
        el("InstrumentSerialNumber", ident.serial),
        el("ApplicationName", profile.application),
        el("ApplicationVersion", profile.application_version),
        el("FlowCellSerialNumber", ident.flowcell_id),
        el("FlowCellPartNumber", "20040561"),
        el("FlowCellLotNumber", f"{c.digits(8)}-D"),
        el("FlowCellExpirationDate", c.expiry(200).strftime("%Y-%m-%d")),
        el("CartridgeSerialNumber", c.serial("EC", "EC05")),
        el("CartridgePartNumber", "20040560"),
        el("CartridgeLotNumber", c.digits(8)),
        el("CartridgeExpirationDate", c.expiry(200).strftime("%Y-%m-%d")),
        el("ExperimentName", run_id),
        el("RecipeName", f"{spec.flowcell.name}-Seq"),
        el("RecipeVersion", "1.6"),
        el("RtaVersion", profile.rta_version),
        el("RunStartTime", iso_utc(spec.started_at)),
        el("RunEndTime", iso_utc(ended_at) if ended_at else "0001-01-01T00:00:00Z"),
        el("RunCounter", ident.run_number),
        el("CopyServiceRunId", f"{c.digits(8)}{c.digits(8)}"),
        el("CopyServiceVersion", "2.0.8.695"),
        el("RunSetupMode", "Manual"),
        el("SecondaryAnalysisMode", "None"),
        el("OutputFolder", f"/mnt/nas/sequencers/incoming/nextseq2000/{run_id}"),
        el("PurgeReagentCartridge", "false"),
    )
    return render(root, LINUX_STYLE)


def _novaseqx(spec: RunSpec, c: _Consumables) -> bytes:
    r1, r2, i1, i2 = spec.planned_cycles
    run_id, ident, profile = spec.run_id, spec.identity, spec.profile
    fmt = "%Y-%m-%dT%H:%M:%S+00:00"

    def consumable(serial: str, part: str, kind: str, name: str) -> El:
        return el(
            "ConsumableInfo",
            None,
            el("SerialNumber", serial),
            el("LotNumber", c.digits(8)),
            el("PartNumber", part),
            el("ExpirationDate", c.expiry(200).strftime(fmt)),
            el("Type", kind),
            el("Mode", 3),
            el("Version", "1.0"),
            el("Name", name),
        )

    planned = [("Read1", r1), ("Index1", i1), ("Index2", i2), ("Read2", r2)]
    root = el_attrs(
        "RunParameters",
        list(XSI_FIRST),
        el("Side", ident.side),
        el("Application", profile.application),
        el("SystemSuiteVersion", profile.application_version),
        el("OutputFolder", f"//nas/sequencers/incoming/novaseqx/{run_id}"),
        el("CloudUploadMode", "InstrumentPerformance"),
        el("RunSetupMode", "Manual"),
        el("SecondaryAnalysisMode", "None"),
        el("InstrumentType", "NovaSeqXPlus"),
        el("InstrumentSerialNumber", ident.serial),
        el("RunId", run_id),
        el("RunCounter", ident.run_number),
        el("RecipeName", f"{spec.flowcell.name} Sequencing"),
        el("RecipeVersion", f"{spec.flowcell.name}-01.02.02"),
        el("ExperimentName", ident.flowcell_id),
        el("FlowCellName", "NovaSeqXSeries B3"),
        el("FlowCellType", "NovaSeqXSeriesB3"),
        el(
            "ConsumableInfo",
            None,
            consumable(c.serial("LC", "LC1"), "20081650", "Lyo", "Mid"),
            consumable(c.serial("LC", "BUF"), "20089853", "Buffer", "Universal"),
            consumable(c.serial("LC", "LC3"), "20066614", "Reagent", f"{spec.flowcell.name} 300c"),
            consumable(ident.flowcell_id, "20080370", "FlowCell", spec.flowcell.name),
            consumable(c.serial("LC", "LC1"), "20072271", "SampleTube", "8 Lane"),
        ),
        el(
            "PlannedReads",
            None,
            *(el("Read", ReadName=name, Cycles=n) for name, n in planned if n),
        ),
        el("SecondaryAnalysisInfo"),
        el("DisableBclCopy", "false"),
    )
    return render(root, NOVASEQX_STYLE)


def run_parameters_xml(spec: RunSpec, *, ended_at: datetime | None = None) -> bytes:
    """RunParameters as written at run start, or (NextSeq 1000/2000) as rewritten when the run ends."""
    consumables = _Consumables(spec)
    match spec.family:
        case Instrument.MISEQ:
            return _miseq(spec, consumables)
        case Instrument.NEXTSEQ500:
            return _nextseq500(spec, consumables)
        case Instrument.ISEQ100:
            return _iseq(spec, consumables)
        case Instrument.NOVASEQ6000:
            return _novaseq6000(spec, consumables)
        case Instrument.NEXTSEQ2000:
            return _nextseq2000(spec, consumables, ended_at)
        case Instrument.NOVASEQX:
            return _novaseqx(spec, consumables)
        case _:
            raise ValueError(f"no RunParameters shape for {spec.family}")
