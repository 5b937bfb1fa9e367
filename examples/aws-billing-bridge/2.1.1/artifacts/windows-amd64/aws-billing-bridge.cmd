@echo off
echo aws-billing-bridge 2.1.1 (windows/amd64)
