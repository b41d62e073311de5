"""pumpctl: the external programmer for the bench ITB pump emulator.

Research and education prototype: never for human use.
"""
__version__ = "0.1.0"
