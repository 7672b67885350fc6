"""(commands registered here as they are implemented)"""
