"""immute.agent"""
