"""immute.routers"""
