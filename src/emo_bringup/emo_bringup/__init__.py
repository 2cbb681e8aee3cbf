"""emo_bringup: installs the launch files, node parameters and rviz config of the Emo stack."""
