"""Pure ad-hoc logic: manifest parsing and validation, request and result building. No I/O, no AWS."""
