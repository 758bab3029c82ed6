"""batchd: documents in a folder, Claude's answers out, through Message Batches."""

__version__ = "0.1.0"
