from services.kit.serve import serve

serve("agent_core")
