"""The demo: a canary release and an automatic rollback told live on a local cluster.

``story`` runs it, ``worlds`` holds the two clusters it can run on, ``view`` the text it prints.
"""
