DROP TABLE task_comments;
