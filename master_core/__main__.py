from services.kit.serve import serve

serve("master_core")
