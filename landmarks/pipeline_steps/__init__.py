"""What the pipeline's KFP components call inside their images: one module per kind of step.

Components (`components/`) import only the installed `landmarks` package; the code here turns
a component's parameters into the library's calls, so a component stays a few lines.
"""
