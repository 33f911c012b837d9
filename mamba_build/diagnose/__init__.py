"""What is on this machine and what went wrong: probes, doctor checks, the toolchain probe and `explain`."""
