"""Chat-ops domain (access, slash commands, buttons, the notebook directory): a parsed Slack request -> a reply, and maybe a Command to queue.

Pure: the caller passes who asked (`Invocation`, with `now`), the configuration (`ChatConfig`),
and a read-only `Directory` of notebooks and their owners. Nothing here touches the network or the
environment. Rules:
- only allowed workspaces, channels and users get anywhere;
- non-admins act only on notebooks they own (owner = Slack user recorded at create, as the
  `nbkeeper.owner` tag and in the state table); admins act on any;
- `delete`, any action on someone else's notebook, and stop-update-start ask for confirmation
  (a Block Kit confirm button whose value carries the command; re-authorized when clicked);
- an ambiguous name lists the candidates instead of guessing;
- the lease keeper's buttons work where its warnings land (DMs, so no channel check) and only for
  this project's notebooks: the Directory, and so the owner check, covers no other project.
"""
