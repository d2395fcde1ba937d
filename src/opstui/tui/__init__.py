"""The console (Textual). Nothing outside this package imports Textual."""
