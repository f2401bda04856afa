"""immute.core"""
