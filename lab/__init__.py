"""The lab: a stack's roles on local Debian 13 machines from the same cloud-init Azure receives."""
