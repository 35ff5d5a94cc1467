from seqferry_executor.backends.classify import listing_prefixes


def test_listing_prefixes_cover_every_include_once() -> None:
    assert listing_prefixes(["/seq/x/2511*", "/seq/x/251125_run/", "/adhoc", "/seq/x/2510*"]) == [
        "adhoc",
        "seq/x/2510",
        "seq/x/2511",
    ]
