from services.kit.serve import serve

serve("event_bus")
