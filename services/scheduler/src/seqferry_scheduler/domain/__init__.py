"""Pure scheduling logic: ticks, lab-local dates, include patterns. No I/O."""
