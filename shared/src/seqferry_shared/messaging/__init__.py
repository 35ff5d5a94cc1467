"""Transport by concern: :mod:`.envelopes` (what SQS bodies wrap), :mod:`.routing` (which typed handler, trusted
sources), :mod:`.dispatch` (one message to its handler), :mod:`.consumer` (the receive loop), :mod:`.publisher`
(events onto the bus). The outcomes a handler can ask for are in :mod:`seqferry_shared.errors`."""
