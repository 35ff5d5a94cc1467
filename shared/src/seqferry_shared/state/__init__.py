"""The state table: :mod:`.kinds` declares its layout and every record kind; :mod:`.records` stores typed records."""
