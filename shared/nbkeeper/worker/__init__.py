"""The queue worker: commands from the FIFO queue and follow-ups, run against ModelArts."""
