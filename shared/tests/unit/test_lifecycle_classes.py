"""Every delivered object gets a lifecycle class; the bucket's rules send each class where the README says."""

from __future__ import annotations

import dataclasses

import pytest

from seqferry_shared.bootstrap import lifecycle_rules
from seqferry_shared.resources import STORAGE_CLASS_TAG, LifecycleSpec, ResourceNames, adhoc_prefixes, object_class
from seqferry_shared.testing.lifecycle import lifecycle_outcome

RUN = "sequencers/incoming/novaseq/240802_A01934_0156_AHJF77DRX5"


@pytest.mark.parametrize(
    ("key", "klass", "outcome"),
    [
        (f"{RUN}/Data/Intensities/BaseCalls/L001/C1.1/L001_1.cbcl", "basecalls", (("DEEP_ARCHIVE", 30),)),
        (f"{RUN}/Data/Intensities/BaseCalls/L001/s_1_1101.filter", "basecalls", (("DEEP_ARCHIVE", 30),)),
        ("sequencers/incoming/miseq/R/Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl", "basecalls", None),
        (f"{RUN}/Analysis/1/Data/sample.bam", "alignments", (("DEEP_ARCHIVE", 90),)),
        (f"{RUN}/Analysis/1/Data/sample.hard-filtered.vcf.gz", "variants", (("STANDARD_IA", 30),)),
        (f"{RUN}/Analysis/1/Data/fastq/S1_R1_001.fastq.gz", "reads", ()),
        # no specific class: the run's default, like the reference's 'everything to Glacier after 30 days'
        (f"{RUN}/RunInfo.xml", "run", (("GLACIER_IR", 30),)),
        (f"{RUN}/InterOp/QMetricsOut.bin", "run", (("GLACIER_IR", 30),)),
        (f"{RUN}/RTAComplete.txt", "run", (("GLACIER_IR", 30),)),
        # adhoc/ is never archived, whatever the file is
        ("adhoc/rerun.txt", "adhoc", ()),
        ("adhoc/results/rerun.txt.json", "adhoc", ()),
        ("adhoc/old-run/sample.bam", "adhoc", ()),
        ("adhoc/old-run/L001_1.cbcl", "adhoc", ()),
    ],
)
def test_each_key_has_a_class_and_its_rule(key: str, klass: str, outcome: tuple[tuple[str, int], ...] | None) -> None:
    assert object_class(key) == klass
    result = lifecycle_outcome(lifecycle_rules(ResourceNames.for_prefix("lab")), key, {STORAGE_CLASS_TAG: klass})
    if outcome is not None:
        assert result.transitions == outcome
    assert result.expiration_days is None
    # noncurrent versions and stale uploads are cleaned everywhere
    assert "noncurrent-versions-and-stale-uploads" in result.rules


def test_a_configured_adhoc_folder_is_never_archived_either() -> None:
    prefixes = adhoc_prefixes("/lab/adhoc/")
    assert prefixes == ("adhoc/", "lab/adhoc/")
    assert object_class("lab/adhoc/sample.bam", prefixes) == "adhoc"
    assert object_class("lab/adhocx/sample.bam", prefixes) == "alignments"
    assert adhoc_prefixes("/adhoc") == ("adhoc/",)


def test_untagged_objects_are_not_archived_and_reads_expire_only_when_asked() -> None:
    rules = lifecycle_rules(ResourceNames.for_prefix("lab"))
    assert lifecycle_outcome(rules, f"{RUN}/RunInfo.xml", {}).transitions == ()
    names = dataclasses.replace(ResourceNames.for_prefix("lab"), lifecycle=LifecycleSpec(reads_expire_days=60))
    reads = lifecycle_outcome(lifecycle_rules(names), f"{RUN}/x.fastq.gz", {STORAGE_CLASS_TAG: "reads"})
    assert reads.expiration_days == 60
