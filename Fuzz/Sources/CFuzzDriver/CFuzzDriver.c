// Only the declaration in include/CFuzzDriver.h: the driver comes with libFuzzer.
