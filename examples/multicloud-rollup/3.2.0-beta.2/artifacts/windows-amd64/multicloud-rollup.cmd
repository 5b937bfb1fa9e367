@echo off
echo multicloud-rollup 3.2.0-beta.2 (windows/amd64)
