"""The simulator's domain: instrument profiles, run-folder files and the step-driven writer.

Writing files is this domain's job; it imports no AWS code.
"""
