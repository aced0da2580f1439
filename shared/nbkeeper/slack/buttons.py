"""Action ids of the lease keeper's warning buttons: rendered by `keeper_messages`, handled by
`chatops` (the interactions route). One definition, so the two cannot drift apart."""

KEEP_ACTION = "keeper.keep"  # "Keep Nh more": a reservation of N hours from the click
STOP_ACTION = "keeper.stop"  # "Stop now"
