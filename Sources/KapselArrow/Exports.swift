// `import KapselArrow` brings the C Data Interface structs (`ArrowArray`, `ArrowSchema`) with it.
@_exported import CKapselArrow
