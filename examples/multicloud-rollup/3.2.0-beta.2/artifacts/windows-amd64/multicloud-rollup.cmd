@echo off
rem Stand-in for the Multi-Cloud Rollup binary.
echo multicloud-rollup 3.2.0-beta.2 (windows/amd64)
