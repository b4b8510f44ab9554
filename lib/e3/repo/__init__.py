"""The repository in e3's words: packages, workspaces, datasets, history, status, gc and fsck.

Built on e3.storage; knows nothing of how tasks are scheduled or run (e3.exec).
"""
