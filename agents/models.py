"""Services (deployments) and the agent host arrive with the agents issue."""
