"""Artifacts: fetching, unpacking and checksumming model files before anything parses them.

Used by ``coalmine-serve fetch`` (an init container) and by the runtime loader, never by HTTP.
"""
