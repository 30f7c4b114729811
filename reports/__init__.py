"""Documents made from a plan: the cost estimate, the reference pages, the request pack, the checkov page."""
