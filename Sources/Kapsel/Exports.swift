// `import Kapsel` brings the shared memory types (`SharedArray`, `SharedTensor`,
// `SharedBuffer`, `SlotPool`) with it: jobs use them in their fields and outputs.
@_exported import KapselSharedMemory
