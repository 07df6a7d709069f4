"""Everything a person or a spreadsheet sees: rich tables, CSV and Markdown, progress
bars, pictures.  Importing this package is cheap; the modules load rich when used."""

# What stdout can hold; the CLI offers these before any renderer is imported.
FORMATS = ("table", "json", "csv", "markdown")
