"""Readers and writers of motion files, one module per format. Entry points land here."""
