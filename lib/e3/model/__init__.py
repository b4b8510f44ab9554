"""e3's object model: packages, tasks, dataset trees, workspaces, executions."""
