from services.kit.serve import serve

serve("memory")
